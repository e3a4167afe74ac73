package s3store_test

import (
	"encoding/base64"
	"encoding/hex"
)

func b64sum(hexSum string) string {
	raw, _ := hex.DecodeString(hexSum)
	return base64.StdEncoding.EncodeToString(raw)
}
