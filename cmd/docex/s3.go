package main

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/backends/s3store"
	"github.com/docex-dev/docex/config"
)

// openS3 returns the S3 content store of storage.documents.s3 (no network
// I/O), with credentials read from the environment variables the config
// names, or the AWS SDK's default chain when it names none. The values are
// never printed.
func openS3(ctx context.Context, f *config.File, getenv func(string) string) (*s3store.Store, error) {
	c := f.Storage.Documents.S3
	var creds aws.CredentialsProvider
	if c.AccessKeyIDEnv != "" {
		id, secret := getenv(c.AccessKeyIDEnv), getenv(c.SecretAccessKeyEnv)
		if id == "" || secret == "" {
			return nil, withHint(docex.Errorf(docex.ErrInvalidConfig, "storage.documents.s3: environment variables %s and %s must both be set", c.AccessKeyIDEnv, c.SecretAccessKeyEnv),
				fmt.Sprintf("export %s and %s (the S3 access key id and secret key; docs/s3.md), or remove access_key_id_env and secret_access_key_env from docex.yaml to use the AWS SDK's default credentials", c.AccessKeyIDEnv, c.SecretAccessKeyEnv))
		}
		token := ""
		if c.SessionTokenEnv != "" {
			token = getenv(c.SessionTokenEnv)
		}
		creds = credentials.NewStaticCredentialsProvider(id, secret, token)
	}
	return s3store.New(ctx, s3store.Config{
		Bucket: c.Bucket, Prefix: c.Prefix, Region: c.Region, Endpoint: c.Endpoint, PathStyle: c.PathStyle,
		Credentials: creds, RequestTimeout: time.Duration(c.RequestTimeoutMS) * time.Millisecond,
		PartSize: int64(c.PartSizeMiB) << 20, SpoolDir: c.SpoolDir,
	})
}
