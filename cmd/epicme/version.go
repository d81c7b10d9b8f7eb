package main

import (
	"context"
	"fmt"
	"runtime"
)

func runVersion(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("version", "Print the version of epicme and of the Go toolchain that built it.", e)
	if err := fs.parse(args, e, false); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "epicme %s (%s %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
