// Package markdown reads the parts of the repository's markdown documents
// that tests check against behaviour: fenced code blocks (commands,
// pipelines, quoted output), sections under a heading and table rows.
package markdown
