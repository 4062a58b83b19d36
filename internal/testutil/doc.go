// Package testutil holds the helpers that the tests of several snapdiag
// packages share: a fake clock, bounded waiting for a condition, loopback
// listeners, tmpfs mounts, the snapdiag binary built once, and readers of a
// bundle's members. It is for tests only: *_test.go files and the lab
// package (a test harness itself) import it, nothing that ships.
package testutil
