package wal

import (
	"errors"
	"os"
	"syscall"
)

// preallocate reserves blocks up to size with fallocate, which extends the
// file with unwritten extents that read as zeros. File systems without
// fallocate are not an error.
func preallocate(f *os.File, size int64) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	err = rc.Control(func(fd uintptr) {
		for {
			ferr = syscall.Fallocate(int(fd), 0, 0, size)
			if ferr != syscall.EINTR {
				break
			}
		}
	})
	if errors.Is(ferr, syscall.EOPNOTSUPP) || errors.Is(ferr, syscall.ENOSYS) {
		return nil
	}
	return errors.Join(err, ferr)
}
