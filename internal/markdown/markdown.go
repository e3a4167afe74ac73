package markdown

import "strings"

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
