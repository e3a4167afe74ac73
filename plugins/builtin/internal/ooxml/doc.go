// Package ooxml extracts the text of Office Open XML documents (DOCX, XLSX)
// with bounded memory: ZIP entries are size-checked before and while they
// are decompressed, and XML is read as a stream.
package ooxml
