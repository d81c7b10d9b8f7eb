package main

import (
	"fmt"
	"strconv"
)

// optionalBool is a boolean flag that knows whether it was given, for
// defaults that depend on other flags.
type optionalBool struct {
	set, value bool
}

func (b *optionalBool) String() string {
	if b == nil || !b.set {
		return ""
	}
	return strconv.FormatBool(b.value)
}

func (b *optionalBool) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("want true or false, got %q", s)
	}
	b.set, b.value = true, v
	return nil
}

// IsBoolFlag lets the flag appear without a value.
func (b *optionalBool) IsBoolFlag() bool { return true }

// or returns the flag's value, or def when it was not given.
func (b *optionalBool) or(def bool) bool {
	if b.set {
		return b.value
	}
	return def
}
