//go:build wasip1

// Command wordcount is an example docex plugin: it counts the words of the
// input document and records metadata words=N.
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -o wordcount.wasm .
package main

import (
	"io"

	"github.com/docex-dev/docex/plugins/pdk"
)

func main() {}

//go:wasmexport docex_run
func docexRun() int32 { return pdk.Run(wordcount) }

func wordcount() error {
	// The content is pulled from the host 4 KiB at a time, so a large
	// document never has to fit in guest memory.
	words, err := countWords(pdk.Input().Reader(), make([]byte, 4<<10))
	if err != nil {
		return err
	}
	return pdk.SetMetadata("words", words)
}

// countWords counts runs of non-space bytes (ASCII white space separates).
func countWords(r io.Reader, buf []byte) (int, error) {
	words, inWord := 0, false
	for {
		n, err := r.Read(buf)
		for _, c := range buf[:n] {
			space := c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\v' || c == '\f'
			if !space && !inWord {
				words++
			}
			inWord = !space
		}
		if err == io.EOF {
			return words, nil
		}
		if err != nil {
			return words, err
		}
	}
}
