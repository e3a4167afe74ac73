package markdown

import (
	"slices"
	"strings"
)

// FencedBlocks returns the bodies of text's fenced code blocks (``` lines)
// whose info string is lang ("" for untagged blocks), in order. A block
// left open at the end of text is not returned.
func FencedBlocks(text, lang string) []string {
	var out []string
	var body strings.Builder
	open, tag := false, ""
	for _, line := range strings.SplitAfter(text, "\n") {
		fence, isFence := strings.CutPrefix(strings.TrimRight(line, "\r\n"), "```")
		switch {
		case isFence && !open:
			open, tag = true, strings.TrimSpace(fence)
			body.Reset()
		case isFence && open:
			open = false
			if tag == lang {
				out = append(out, body.String())
			}
		case open:
			body.WriteString(line)
		}
	}
	return out
}

// Section returns the text under heading (a whole heading line such as
// "## Tools") up to the next heading of the same or a higher level, and
// whether text has that heading. Headings inside fenced code blocks are
// not told apart: the repository's documents put none there.
func Section(text, heading string) (string, bool) {
	level := strings.IndexByte(heading, ' ')
	if level < 1 || strings.Trim(heading[:level], "#") != "" {
		return "", false
	}
	var start int
	switch {
	case strings.HasPrefix(text, heading+"\n"):
		start = len(heading) + 1
	default:
		i := strings.Index(text, "\n"+heading+"\n")
		if i < 0 {
			return "", false
		}
		start = i + len(heading) + 2
	}
	rest := text[start:]
	off := 0
	for _, line := range strings.SplitAfter(rest, "\n") {
		if n := len(line) - len(strings.TrimLeft(line, "#")); n > 0 && n <= level && strings.HasPrefix(line[n:], " ") {
			return rest[:off], true
		}
		off += len(line)
	}
	return rest, true
}

// TableRows returns the cells of the body rows of the tables in text (the
// header row and the separator row, of "-" and ":" only, left out),
// trimmed. Cells are split at
// each "|" not escaped by a backslash; "\|" stays as written.
func TableRows(text string) [][]string {
	var rows [][]string
	header := true
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") {
			header = true
			continue
		}
		if header {
			header = false
			continue
		}
		var cells []string
		cell := 0
		body := strings.TrimSuffix(line[1:], "|")
		if strings.HasSuffix(line[1:], `\|`) {
			body = line[1:]
		}
		for i := 0; i < len(body); i++ {
			if body[i] == '\\' {
				i++
				continue
			}
			if body[i] == '|' {
				cells = append(cells, strings.TrimSpace(body[cell:i]))
				cell = i + 1
			}
		}
		cells = append(cells, strings.TrimSpace(body[cell:]))
		if !slices.ContainsFunc(cells, func(c string) bool { return c == "" || strings.Trim(c, "-:") != "" }) {
			continue // the separator row
		}
		rows = append(rows, cells)
	}
	return rows
}
