//go:build !linux

package vfs

import "os"

func syncFile(f *os.File) error { return f.Sync() }

func preallocateFile(f osFile, size int64) error { return truncateUp(f, size) }

// lockFile is a no-op where flock is not wired up; the lock file still
// documents ownership.
func lockFile(f *os.File) error { return nil }
