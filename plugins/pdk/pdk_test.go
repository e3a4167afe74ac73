package pdk

import (
	"errors"
	"math"
	"testing"
)

func TestValueEncoding(t *testing.T) {
	tests := []struct {
		in   any
		wire string
		out  any
	}{
		{"Ann", "sAnn", "Ann"},
		{"", "s", ""},
		{true, "btrue", true},
		{false, "bfalse", false},
		{42, "n42", 42.0},
		{int64(-7), "n-7", -7.0},
		{2.5e-3, "n0.0025", 2.5e-3},
	}
	for _, tt := range tests {
		b, err := encodeValue(tt.in)
		if err != nil || string(b) != tt.wire {
			t.Fatalf("encode(%v) = %q, %v; want %q", tt.in, b, err, tt.wire)
		}
		v, err := decodeValue(b)
		if err != nil || v != tt.out {
			t.Fatalf("decode(%q) = %v, %v; want %v", b, v, err, tt.out)
		}
	}
	for _, bad := range []any{math.NaN(), math.Inf(1), []byte("x"), nil} {
		if _, err := encodeValue(bad); !errors.Is(err, ErrInvalid) {
			t.Fatalf("encode(%v) err = %v", bad, err)
		}
	}
}

// Off wasip1 every host call fails cleanly instead of crashing.
func TestOutsideSandbox(t *testing.T) {
	if err := SetMetadata("k", "v"); !errors.Is(err, ErrNotInSandbox) {
		t.Fatalf("SetMetadata err = %v", err)
	}
	if _, err := Input().ReadAll(); err == nil {
		t.Fatal("ReadAll worked outside the sandbox")
	}
	if _, ok := Param("x"); ok {
		t.Fatal("Param found outside the sandbox")
	}
	if rc := Run(func() error { panic("boom") }); rc != 1 {
		t.Fatalf("Run after panic = %d", rc)
	}
	if rc := Run(func() error { return Skip{"nothing to do"} }); rc != 0 {
		t.Fatalf("Run after Skip = %d", rc)
	}
}
