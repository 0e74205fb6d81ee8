package postgres

import "syscall"

func syscallReset() error { return syscall.ECONNRESET }
