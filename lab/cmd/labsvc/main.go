// Command labsvc stands in for a network service inside a lab namespace
// (see package labsvc, which holds its logic so that snapdiag's hidden
// selftest-service command runs the same service).
package main

import (
	"os"

	"github.com/snapdiag/snapdiag/lab/labsvc"
)

func main() { os.Exit(labsvc.Main(os.Args[1:], os.Stdout, os.Stderr)) }
