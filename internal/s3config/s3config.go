// Package s3config holds the rules for S3 settings that both the
// configuration file (package config) and the S3 content store check, so
// that each rule lives in one place: which bucket names, key prefixes and
// endpoints are acceptable.
package s3config

import (
	"errors"
	"fmt"
	"net/url"
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
// AWS): http:// or https://, a host (and a port), nothing else but an
// optional "/" for a path; else an error saying what is wrong. User info
// (user:password@) is refused: credentials are never written in
// docex.yaml. Print the value with ShowEndpoint, never as it is.
func CheckEndpoint(u string) error {
	if u == "" {
		return nil
	}
	// User info first: a value without a scheme ("user:pw@host") may
	// hold a password too.
	if hasUserInfo(u) {
		return errors.New("want no user info (user:password@) in the URL: credentials are never written in docex.yaml (name their environment variables with access_key_id_env and secret_access_key_env)")
	}
	if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		return errEndpoint
	}
	p, err := url.Parse(u)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("want an http:// or https:// URL: %v", err)
	}
	switch {
	case p.Host == "" || p.Hostname() == "":
		return errors.New("want an http:// or https:// URL with a host, such as http://127.0.0.1:7070")
	case p.Port() == "" && strings.HasSuffix(p.Host, ":"):
		return errors.New("want a port after the ':'")
	case p.RawQuery != "" || p.ForceQuery:
		return errors.New("want no query (?...) in the URL")
	case p.Fragment != "" || strings.Contains(u, "#"):
		return errors.New("want no fragment (#...) in the URL")
	case p.Path != "" && p.Path != "/":
		return errors.New("want no path in the URL (the bucket and the key prefix have keys of their own: bucket, prefix)")
	}
	return nil
}

// hasUserInfo reports whether u may name user info: an '@' anywhere
// (a password may hold the '/', '?' or '#' that would end the
// authority, and a value may lack "://" or have it misspelt, as in
// "u:pw@host" or "http:/u:pw@host"; an endpoint has no other place for
// an '@').
func hasUserInfo(u string) bool {
	return strings.Contains(u, "@")
}

// ShowEndpoint returns u for messages: as it is, but with everything
// from after the scheme's "://" (from the start when there is none, or
// the scheme is not http or https) to
// the last '@', user info that may hold a password, replaced by
// "REDACTED@".
func ShowEndpoint(u string) string {
	if !hasUserInfo(u) {
		return u
	}
	tail := u[strings.LastIndex(u, "@")+1:]
	if scheme, rest, ok := strings.Cut(u, "://"); ok && (scheme == "http" || scheme == "https") && strings.Contains(rest, "@") {
		return scheme + "://REDACTED@" + tail
	}
	return "REDACTED@" + tail
}

func hasDotSegment(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}
