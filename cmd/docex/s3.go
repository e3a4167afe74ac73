package main

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/docex-dev/docex/backends/s3store"
	"github.com/docex-dev/docex/config"
	"github.com/docex-dev/docex/engine"
	"github.com/docex-dev/docex/internal/s3config"
)

// openS3 returns the S3 content store of storage.documents.s3 (no network
// I/O), with credentials read from the environment variables the config
// names, or the AWS SDK's default chain when it names none. The values are
// never printed. storage.documents.max_staged_memory (default 16 MiB) is
// the store's memory budget: the content all adds of the process hold in
// memory at once.
func openS3(ctx context.Context, f *config.File, getenv func(string) string) (*s3store.Store, error) {
	c := f.Storage.Documents.S3
	// The store checks these too; checked here first, an error names
	// the key and its line.
	for _, k := range []struct {
		key, value string
		check      func(string) error
	}{{"bucket", c.Bucket, s3config.CheckBucket}, {"prefix", c.Prefix, s3config.CheckPrefix}, {"endpoint", c.Endpoint, s3config.CheckEndpoint}} {
		if err := k.check(k.value); err != nil {
			shown := k.value
			if k.key == "endpoint" {
				shown = s3config.ShowEndpoint(shown)
			}
			return nil, f.KeyError("storage.documents.s3."+k.key, fmt.Errorf("%q: %w", shown, err))
		}
	}
	id, secret, token, err := f.S3Credentials(getenv)
	if err != nil {
		return nil, withHint(err,
			fmt.Sprintf("export %s and %s (the S3 access key id and secret key; docs/s3.md), or remove access_key_id_env and secret_access_key_env from docex.yaml to use the AWS SDK's default credentials",
				config.S3EnvName("access_key_id_env", c.AccessKeyIDEnv), config.S3EnvName("secret_access_key_env", c.SecretAccessKeyEnv)))
	}
	var creds aws.CredentialsProvider
	if id != "" {
		creds = credentials.NewStaticCredentialsProvider(id, secret, token)
	}
	return s3store.New(ctx, s3store.Config{
		Bucket: c.Bucket, Prefix: c.Prefix, Region: c.Region, Endpoint: c.Endpoint, PathStyle: c.PathStyle,
		Credentials: creds, RequestTimeout: time.Duration(c.RequestTimeoutMS) * time.Millisecond,
		PartSize: int64(c.PartSizeMiB) << 20, SpoolDir: c.SpoolDir,
		MemoryBudget: cmp.Or(f.Storage.Documents.MaxStagedMemory, engine.DefaultMaxStagedMemory),
	})
}
