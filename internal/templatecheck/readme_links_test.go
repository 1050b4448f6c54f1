package templatecheck

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// headingSlugs returns the anchors GitHub gives the headings of a Markdown
// text (fenced code skipped: a "# comment" line of a shell example is not
// a heading), a repeated slug numbered -1, -2, … as GitHub does.
func headingSlugs(text string) map[string]bool {
	heading := regexp.MustCompile(`^#{1,6}\s+(.*?)\s*$`)
	seen := map[string]int{}
	out := map[string]bool{}
	fenced := false
	for line := range strings.Lines(text) {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		m := heading.FindStringSubmatch(line)
		if fenced || m == nil {
			continue
		}
		slug := githubSlug(m[1])
		if n := seen[slug]; n > 0 {
			out[slug+"-"+strconv.Itoa(n)] = true
		} else {
			out[slug] = true
		}
		seen[slug]++
	}
	return out
}

// githubSlug is GitHub's anchor of a heading: lower case, letters, digits,
// '-' and '_' kept, spaces made '-', everything else dropped.
func githubSlug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case unicode.IsLetter(r), unicode.IsDigit(r), r == '-', r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

// brokenAnchors lists the in-page links (](#anchor)) of a Markdown text
// that no heading's anchor answers.
func brokenAnchors(text string) []string {
	slugs := headingSlugs(text)
	var out []string
	for _, m := range regexp.MustCompile(`\]\(#([^)\s]+)\)`).FindAllStringSubmatch(text, -1) {
		if !slugs[m[1]] {
			out = append(out, m[1])
		}
	}
	return out
}

func TestBrokenAnchorsFindsWhatGitHubWouldNot(t *testing.T) {
	text := "# A `b`, c (d/e)\n```sh\n# not a heading\n```\n## Dup\n## Dup\n" +
		"[1](#a-b-c-de) [2](#dup) [3](#dup-1) [4](#dup-2) [5](#not-a-heading) [6](#a-b-c-d-e)\n"
	got := brokenAnchors(text)
	want := []string{"dup-2", "not-a-heading", "a-b-c-d-e"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("brokenAnchors = %q, want %q", got, want)
	}
}

// TestReadmeLinksResolve: every in-page link of README.md, and every
// README.md#anchor of the template (the alarm descriptions), leads to a
// heading; a renamed heading breaks none of them silently.
func TestReadmeLinksResolve(t *testing.T) {
	text := readme(t)
	for _, a := range brokenAnchors(text) {
		t.Errorf("README.md links to #%s, which no heading has", a)
	}
	tmpl, err := os.ReadFile(filepath.Join(repoRoot(t), "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	slugs := headingSlugs(text)
	refs := regexp.MustCompile(`README\.md#([A-Za-z0-9_-]+)`).FindAllStringSubmatch(string(tmpl), -1)
	if len(refs) == 0 {
		t.Fatal("template.yaml links to no README.md#anchor; the check would prove nothing")
	}
	for _, m := range refs {
		if !slugs[m[1]] {
			t.Errorf("template.yaml links to README.md#%s, which no heading has", m[1])
		}
	}
}
