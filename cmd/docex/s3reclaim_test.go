package main

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/docex-dev/docex/internal/s3test"
)

// TestS3InitReclaimSays: docex init on an initialised system whose S3
// prefix lost its claim marker writes it again and says so (text and
// --json "content_claimed": true); a further init changes nothing and
// says that. Before, the re-claiming init said "already initialised;
// nothing changed".
func TestS3InitReclaimSays(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket(t)
	h := newHarness(t)
	h.env["TEST_S3_KEY"], h.env["TEST_S3_SECRET"] = srv.AccessKey, srv.SecretKey
	h.env["DOCEX_NO_BUILTIN_STEPS"] = "1"
	h.file("docex.yaml", s3Config("", bucket, srv.Endpoint))
	h.ok("init")
	marker := "docex/.docex-system"
	drop := func() {
		if _, err := srv.Client().DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: &bucket, Key: &marker}); err != nil {
			t.Fatal(err)
		}
	}
	drop()
	r := h.ok("init")
	if want := "already initialised; the content location s3://" + bucket + "/docex/ had no claim marker (.docex-system): claimed it for this system; nothing else changed"; !strings.Contains(r.stdout, want) {
		t.Fatalf("init after the marker was lost: %s\nwant %s", r.stdout, want)
	}
	if !strings.Contains(strings.Join(s3Keys(t, srv, bucket), " "), marker) {
		t.Fatal("no marker after init")
	}
	if r := h.ok("init"); !strings.Contains(r.stdout, "already initialised; nothing changed") {
		t.Fatalf("init again: %s", r.stdout)
	}
	drop()
	var res initResult
	res = decode[initResult](t, h.ok("init", "--json").stdout)
	if !res.ContentClaimed || res.Created {
		t.Fatalf("init --json after the marker was lost: %+v", res)
	}
	res = decode[initResult](t, h.ok("init", "--json").stdout)
	if res.ContentClaimed {
		t.Fatalf("init --json again: %+v", res)
	}
}
