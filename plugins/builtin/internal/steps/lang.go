package steps

import "strings"

// Function words of a few languages: counting them tells the language of a
// text cheaply (no model). detectLanguage needs enough evidence.
var langWords = map[string]string{
	"en": "the and of to in is that for it with as was on are be by this which or from at an not have but",
	"fr": "le la les et des est un une du dans que qui pour pas sur au avec ce il elle sont par plus",
	"de": "der die und das ist nicht ein eine zu den von mit sich des auf für im dem auch es wird sind",
	"es": "el la los las y de que en un una es por con para del al se lo como más pero sus",
	"it": "il di che la le è un una per non con del della sono gli si da nel alla anche",
	"pt": "o os de que e do da em um uma para com não por dos das se mais ao como mas",
	"nl": "de het een en van is dat op te in zijn voor niet met die er aan ook als",
}

// stopwords are left out of top terms: the function words of every
// language above.
var stopwords = func() map[string]bool {
	m := map[string]bool{}
	for _, ws := range langWords {
		for _, w := range strings.Fields(ws) {
			m[w] = true
		}
	}
	return m
}()

var langIndex = func() map[string][]string {
	m := map[string][]string{}
	for lang, ws := range langWords {
		for _, w := range strings.Fields(ws) {
			m[w] = append(m[w], lang)
		}
	}
	return m
}()

// functionWord maps each function word (langIndex's) to itself: a string
// to count under found without making one.
var functionWord = func() map[string]string {
	m := map[string]string{}
	for w := range langIndex {
		m[w] = w
	}
	return m
}()

// detectLanguage returns the ISO 639-1 code whose function words dominate
// the counts of words (all words counted, lowercased), or "" when fewer
// than 20 function words were seen or no language leads clearly.
func detectLanguage(words map[string]int) string {
	score := map[string]int{}
	total := 0
	for w, n := range words {
		for _, lang := range langIndex[w] {
			score[lang] += n
			total += n
		}
	}
	best, second := "", 0
	for lang, n := range score {
		if best == "" || n > score[best] || n == score[best] && lang < best {
			if best != "" {
				second = max(second, score[best])
			}
			best = lang
		} else {
			second = max(second, n)
		}
	}
	if best == "" || score[best] < 20 || score[best] < 2*second {
		return ""
	}
	return best
}
