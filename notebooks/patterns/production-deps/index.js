// Uses its one production dependency; typescript is only a dev dependency.
const ms = require("ms");
console.log(`one day is ${ms("1d")} ms`);
