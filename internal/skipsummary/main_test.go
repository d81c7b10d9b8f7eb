package main

import (
	"strings"
	"testing"
)

func TestSummaryKeepsGoTestLinesAndListsSkips(t *testing.T) {
	in := strings.Join([]string{
		`{"Action":"start","Package":"github.com/epicme/epicme/a"}`,
		`{"Action":"run","Package":"github.com/epicme/epicme/a","Test":"TestOK"}`,
		`{"Action":"output","Package":"github.com/epicme/epicme/a","Test":"TestOK","Output":"=== RUN   TestOK\n"}`,
		`{"Action":"pass","Package":"github.com/epicme/epicme/a","Test":"TestOK"}`,
		`{"Action":"output","Package":"github.com/epicme/epicme/a","Test":"TestPG","Output":"=== RUN   TestPG\n"}`,
		`{"Action":"output","Package":"github.com/epicme/epicme/a","Test":"TestPG","Output":"    pg_test.go:12: set EPICME_TEST_POSTGRES_URL\n"}`,
		`{"Action":"output","Package":"github.com/epicme/epicme/a","Test":"TestPG","Output":"--- SKIP: TestPG (0.00s)\n"}`,
		`{"Action":"skip","Package":"github.com/epicme/epicme/a","Test":"TestPG"}`,
		`{"Action":"output","Package":"github.com/epicme/epicme/a","Test":"TestBad","Output":"=== RUN   TestBad\n"}`,
		`{"Action":"output","Package":"github.com/epicme/epicme/a","Test":"TestBad","Output":"    bad_test.go:3: want 1, got 2\n"}`,
		`{"Action":"output","Package":"github.com/epicme/epicme/a","Test":"TestBad","Output":"--- FAIL: TestBad (0.00s)\n"}`,
		`{"Action":"fail","Package":"github.com/epicme/epicme/a","Test":"TestBad"}`,
		`{"Action":"output","Package":"github.com/epicme/epicme/a","Output":"FAIL\n"}`,
		`{"Action":"output","Package":"github.com/epicme/epicme/a","Output":"FAIL\tgithub.com/epicme/epicme/a\t0.1s\n"}`,
		`{"Action":"output","Package":"github.com/epicme/epicme/b","Test":"TestPG2","Output":"    x_test.go:9: set EPICME_TEST_POSTGRES_URL\n"}`,
		`{"Action":"skip","Package":"github.com/epicme/epicme/b","Test":"TestPG2"}`,
		`{"Action":"output","Package":"github.com/epicme/epicme/b","Test":"TestHang","Output":"panic: test timed out after 1s\n"}`,
		`{"Action":"output","Package":"github.com/epicme/epicme/b","Output":"PASS\n"}`,
		`{"Action":"output","Package":"github.com/epicme/epicme/b","Output":"ok  \tgithub.com/epicme/epicme/b\t0.2s\n"}`,
		`# a line that is not an event`,
	}, "\n")
	var out strings.Builder
	if err := summarize(strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	want := "    bad_test.go:3: want 1, got 2\n--- FAIL: TestBad (0.00s)\nFAIL\nFAIL\tgithub.com/epicme/epicme/a\t0.1s\n" +
		"ok  \tgithub.com/epicme/epicme/b\t0.2s\n# a line that is not an event\n" +
		"panic: test timed out after 1s\n" +
		"\n2 tests skipped; to run them:\n  set EPICME_TEST_POSTGRES_URL\n      2 skipped: a TestPG, b TestPG2\n"
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}
