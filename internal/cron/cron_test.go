package cron

import (
	"testing"
	"time"
)

func TestNext(t *testing.T) {
	from := time.Date(2026, 11, 29, 16, 7, 30, 0, time.UTC) // a Sunday
	cases := []struct{ spec, want string }{
		{"* * * * *", "2026-11-29 16:08"},
		{"*/5 * * * *", "2026-11-29 16:10"},
		{"0 * * * *", "2026-11-29 17:00"},
		{"@hourly", "2026-11-29 17:00"},
		{"30 2 * * *", "2026-11-30 02:30"},
		{"0 9 * * mon-fri", "2026-11-30 09:00"},
		{"0 0 1 * *", "2026-12-01 00:00"},
		{"0 0 1 jan *", "2027-01-01 00:00"},
		{"15,45 16 * * *", "2026-11-29 16:15"},
		{"0 0 13 * 5", "2026-12-04 00:00"}, // day 13 or any Friday
		{"0 0 * * 7", "2026-12-06 00:00"},  // Sunday as 7
		{"10-20/5 * * * *", "2026-11-29 16:10"},
		{"0 0 29 2 *", "2028-02-29 00:00"},
	}
	for _, c := range cases {
		s, err := Parse(c.spec)
		if err != nil {
			t.Errorf("%s: %v", c.spec, err)
			continue
		}
		if got := s.Next(from).Format("2006-01-02 15:04"); got != c.want {
			t.Errorf("%s: next %s, want %s", c.spec, got, c.want)
		}
	}
	every, _ := Parse("@every 90s")
	if got := every.Next(from); !got.Equal(from.Add(90 * time.Second)) {
		t.Errorf("@every 90s: %v", got)
	}
}

func TestParseErrors(t *testing.T) {
	for spec, want := range map[string]string{
		"":            "empty spec string",
		"* * * *":     "expected exactly 5 fields, found 4: [* * * *]",
		"61 * * * *":  "beginning of range (61) beyond end of range (61) or outside 0-59: 61",
		"x * * * *":   `failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax`,
		"*/0 * * * *": "failed to parse int from 0: invalid step",
		"@often":      "unrecognized descriptor: @often",
	} {
		if _, err := Parse(spec); err == nil || err.Error() != want {
			t.Errorf("Parse(%q) error %v, want %q", spec, err, want)
		}
	}
}
