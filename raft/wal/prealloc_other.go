//go:build !linux

package wal

import "os"

// preallocate does nothing where the standard library offers no fallocate.
func preallocate(*os.File, int64) error { return nil }
