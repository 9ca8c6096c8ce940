// A program with nothing to import: the smallest thing worth shipping on scratch.
package main

import "fmt"

func main() {
	fmt.Println("hello from a static binary")
}
