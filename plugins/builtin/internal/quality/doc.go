// Package quality scores extracted text against a reference extractor's
// output: token-level precision, recall and F1 over bags of tokens.
package quality
