package steps

import (
	"errors"
	"io"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// htmlSkip are elements whose content is not text.
var htmlSkip = map[atom.Atom]bool{
	atom.Script: true, atom.Style: true, atom.Head: true, atom.Template: true, atom.Noscript: true,
	atom.Svg: true, atom.Math: true, atom.Iframe: true, atom.Object: true, atom.Select: true,
	atom.Textarea: true, atom.Button: true, atom.Canvas: true, atom.Video: true, atom.Audio: true,
}

// htmlBlock are elements that start and end a line.
var htmlBlock = map[atom.Atom]bool{
	atom.P: true, atom.Div: true, atom.H1: true, atom.H2: true, atom.H3: true, atom.H4: true, atom.H5: true,
	atom.H6: true, atom.Li: true, atom.Ul: true, atom.Ol: true, atom.Dl: true, atom.Dt: true, atom.Dd: true,
	atom.Table: true, atom.Tr: true, atom.Pre: true, atom.Blockquote: true, atom.Section: true,
	atom.Article: true, atom.Header: true, atom.Footer: true, atom.Nav: true, atom.Aside: true,
	atom.Main: true, atom.Figure: true, atom.Figcaption: true, atom.Form: true, atom.Address: true,
	atom.Details: true, atom.Summary: true, atom.Hr: true, atom.Caption: true, atom.Fieldset: true,
	atom.Legend: true, atom.Body: true, atom.Html: true, atom.Center: true, atom.Menu: true,
}

// htmlOptionalEnd are elements whose end tag may be left out: they are not
// counted for the nesting limit.
var htmlOptionalEnd = map[atom.Atom]bool{
	atom.P: true, atom.Li: true, atom.Dt: true, atom.Dd: true, atom.Tr: true, atom.Td: true, atom.Th: true,
	atom.Option: true, atom.Thead: true, atom.Tbody: true, atom.Tfoot: true, atom.Colgroup: true,
	atom.Rt: true, atom.Rp: true, atom.Optgroup: true,
}

// htmlVoid are elements without content or end tag.
var htmlVoid = map[atom.Atom]bool{
	atom.Area: true, atom.Base: true, atom.Br: true, atom.Col: true, atom.Embed: true, atom.Hr: true,
	atom.Img: true, atom.Input: true, atom.Link: true, atom.Meta: true, atom.Source: true, atom.Track: true,
	atom.Wbr: true, atom.Param: true,
}

// htmlWriter collapses white space and keeps block structure as line breaks.
type htmlWriter struct {
	b       limitedBuilder
	space   bool // a space is pending
	lineBeg bool // at the start of a line
	pre     int
}

func (w *htmlWriter) text(s string) {
	if s == "" {
		return
	}
	if w.pre > 0 {
		w.b.WriteString(s)
		w.lineBeg = strings.HasSuffix(s, "\n")
		w.space = false
		return
	}
	if isHTMLSpace(rune(s[0])) {
		w.space = true
	}
	for i, f := range strings.FieldsFunc(s, isHTMLSpace) {
		if (w.space || i > 0) && !w.lineBeg {
			w.b.WriteByte(' ')
		}
		w.b.WriteString(f)
		w.space, w.lineBeg = false, false
	}
	if isHTMLSpace(rune(s[len(s)-1])) {
		w.space = true
	}
}

func isHTMLSpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\f'
}

// breakLine ends the current line (blank lines are not repeated).
func (w *htmlWriter) breakLine() {
	if !w.lineBeg && w.b.Len() > 0 {
		w.b.WriteByte('\n')
	}
	w.lineBeg, w.space = true, false
}

func (w *htmlWriter) sep(c byte) {
	if !w.lineBeg {
		w.b.WriteByte(c)
	}
	w.space = false
}

// htmlText extracts the text of an HTML page: scripts, styles and the head
// dropped, block elements on their own lines, table cells separated by
// tabs, image alt text kept. Nesting deeper than MaxHTMLDepth is refused.
func htmlText(r io.Reader) (string, error) {
	z := html.NewTokenizer(r)
	z.SetMaxBuf(4 << 20)
	w := &htmlWriter{b: limitedBuilder{max: MaxText}, lineBeg: true}
	var stack []atom.Atom
	skip := 0
	var title strings.Builder
	inTitle, figures := false, 0
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			err := z.Err()
			if errors.Is(err, io.EOF) {
				body := strings.TrimSpace(w.b.String()) + "\n"
				if t := strings.Join(strings.Fields(title.String()), " "); t != "" {
					body = t + "\n\n" + body
				}
				return body, nil
			}
			if errors.Is(err, html.ErrBufferExceeded) {
				return "", Errorf(ErrLimit, "an HTML token is longer than 4 MiB")
			}
			return "", err
		case html.TextToken:
			if inTitle && title.Len() < 4096 {
				title.Write(z.Text())
			}
			if skip == 0 {
				w.text(string(z.Text()))
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			a := atom.Lookup(name)
			if a == 0 {
				a = atom.Span // unknown elements are inline
			}
			switch a {
			case atom.Title:
				inTitle = tt == html.StartTagToken
			case atom.Figure:
				figures++
			}
			if a == atom.Body { // </head> may be left out
				for i := len(stack) - 1; i >= 0; i-- {
					if stack[i] == atom.Head {
						skip--
						stack = append(stack[:i], stack[i+1:]...)
					}
				}
			}
			if htmlSkip[a] {
				if tt == html.StartTagToken && !htmlVoid[a] {
					skip++
					stack = append(stack, a)
				}
				continue
			}
			if tt == html.StartTagToken && !htmlVoid[a] && !htmlOptionalEnd[a] {
				stack = append(stack, a)
				if len(stack) > MaxHTMLDepth {
					return "", Errorf(ErrLimit, "HTML nesting deeper than %d elements", MaxHTMLDepth)
				}
			}
			if skip > 0 {
				continue
			}
			switch {
			case a == atom.Br:
				w.breakLine()
			case a == atom.Td || a == atom.Th:
				w.sep('\t')
			case a == atom.Img && hasAttr && figures == 0: // in a figure the caption stands for it
				for {
					k, v, more := z.TagAttr()
					if string(k) == "alt" && len(v) > 0 {
						w.text(" " + string(v) + " ")
					}
					if !more {
						break
					}
				}
			case htmlBlock[a]:
				w.breakLine()
				if a == atom.Pre {
					w.pre++
				}
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			a := atom.Lookup(name)
			switch {
			case a == atom.Title:
				inTitle = false
			case a == atom.Figure && figures > 0:
				figures--
			}
			if !htmlOptionalEnd[a] {
				for i := len(stack) - 1; i >= 0; i-- {
					if stack[i] == a {
						for _, x := range stack[i:] {
							if htmlSkip[x] {
								skip--
							}
						}
						stack = stack[:i]
						break
					}
				}
			}
			if skip > 0 {
				continue
			}
			if a == atom.Pre && w.pre > 0 {
				w.pre--
			}
			if htmlBlock[a] {
				w.breakLine()
			}
		}
		if err := w.b.check(); err != nil {
			return "", err
		}
	}
}
