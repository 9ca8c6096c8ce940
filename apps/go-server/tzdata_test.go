package main

// The tests need time zone data (TestTime asks for Europe/Paris), and the image they run in may
// have none: golang:*-alpine ships no tzdata, and with `go test -trimpath` Go cannot find
// $GOROOT/lib/time/zoneinfo.zip either. Embedding the database into the *test* binary makes
// `go test` independent of the image; the server binary itself stays without it, so notebook 03
// still shows what a scratch image without zone data does.
import _ "time/tzdata"
