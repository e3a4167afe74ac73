// Package s3config holds the rules for S3 settings that both the
// configuration file (package config) and the S3 content store check, so
// that each rule lives in one place: which bucket names, key prefixes and
// endpoints are acceptable.
package s3config

import (
	"errors"
	"regexp"
	"strings"
)

var (
	bucketRule = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	prefixRule = regexp.MustCompile(`^[A-Za-z0-9!_.*'()-]+(/[A-Za-z0-9!_.*'()-]+)*$`)

	errBucket   = errors.New("want 3 to 63 lowercase letters, digits, '.' and '-'")
	errPrefix   = errors.New("want slash-separated segments of letters, digits and !_.*'()- (no '.' or '..' segments, no leading or trailing slash)")
	errEndpoint = errors.New("want an http:// or https:// URL")
)

// CheckBucket returns nil for a bucket name docex uses, else an error
// saying what one is.
func CheckBucket(name string) error {
	if !bucketRule.MatchString(name) || strings.Contains(name, "..") {
		return errBucket
	}
	return nil
}

// CheckPrefix returns nil for a key prefix docex uses ("" included: no
// prefix), else an error saying what one is.
func CheckPrefix(p string) error {
	if p != "" && (len(p) > 512 || !prefixRule.MatchString(p) || hasDotSegment(p)) {
		return errPrefix
	}
	return nil
}

// CheckEndpoint returns nil for an endpoint URL docex uses ("" included:
// AWS), else an error saying what one is.
func CheckEndpoint(u string) error {
	if u != "" && !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		return errEndpoint
	}
	return nil
}

func hasDotSegment(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}
