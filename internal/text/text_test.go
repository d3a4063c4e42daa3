package text

import "testing"

func TestJoin(t *testing.T) {
	for _, tt := range []struct{ a, b, want string }{
		{"", "", ""}, {"a bare pod", "", "a bare pod"}, {"", "read back", "read back"}, {"a bare pod", "read back", "a bare pod; read back"},
	} {
		t.Run(tt.a+"+"+tt.b, func(t *testing.T) {
			if got := Join(tt.a, tt.b); got != tt.want {
				t.Errorf("Join(%q, %q) = %q, want %q", tt.a, tt.b, got, tt.want)
			}
		})
	}
}

func TestTruncate(t *testing.T) {
	for _, tt := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"}, {"exactly10!", 10, "exactly10!"}, {"abcdefghijk", 10, "abcdefg..."}, {"aaaaaaé", 10, "aaaaaaé"},
		{"aaaaaaaéé", 10, "aaaaaaa..."}, {"aaaaaaééé", 10, "aaaaaa..."},
		{"\x80\x80\x80\x80\x80\x80", 5, "..."}, // not UTF-8: the cut stops at the start
	} {
		t.Run(tt.in, func(t *testing.T) {
			if got := Truncate(tt.in, tt.n); got != tt.want || len(got) > tt.n {
				t.Errorf("truncate(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
			}
		})
	}
}
