// Package cron parses the standard five-field cron schedules CronJobs use
// (minute hour day-of-month month day-of-week; lists, ranges, steps, month and
// day names, the @hourly/@daily/@weekly/@monthly/@yearly descriptors and
// @every <duration>) and finds their next activation, as the robfig/cron parser
// Kubernetes uses does.
package cron

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Schedule is a parsed cron schedule.
type Schedule struct {
	minute, hour, dom, month, dow uint64 // bit i set: value i matches
	domStar, dowStar              bool
	every                         time.Duration // @every; the fields are unused then
}

type bounds struct {
	min, max int
	names    map[string]int
}

var (
	minutes = bounds{0, 59, nil}
	hours   = bounds{0, 23, nil}
	doms    = bounds{1, 31, nil}
	months  = bounds{1, 12, map[string]int{"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
		"jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12}}
	dows = bounds{0, 6, map[string]int{"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}}
)

var descriptors = map[string]string{
	"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
	"@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}

// Parse reads a standard cron schedule.
func Parse(spec string) (*Schedule, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, fmt.Errorf("empty spec string")
	}
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		return nil, fmt.Errorf("CRON_TZ or TZ is not supported in the schedule; use spec.timeZone")
	}
	if d, ok := strings.CutPrefix(spec, "@every "); ok {
		every, err := time.ParseDuration(strings.TrimSpace(d))
		if err != nil {
			return nil, fmt.Errorf("failed to parse duration %s: %w", spec, err)
		}
		if every < time.Second {
			every = time.Second
		}
		return &Schedule{every: every}, nil
	}
	if strings.HasPrefix(spec, "@") {
		full, ok := descriptors[spec]
		if !ok {
			return nil, fmt.Errorf("unrecognized descriptor: %s", spec)
		}
		spec = full
	}
	f := strings.Fields(spec)
	if len(f) != 5 {
		return nil, fmt.Errorf("expected exactly 5 fields, found %d: %v", len(f), f)
	}
	s := &Schedule{domStar: f[2] == "*" || f[2] == "?", dowStar: f[4] == "*" || f[4] == "?"}
	var err error
	for i, dst := range []*uint64{&s.minute, &s.hour, &s.dom, &s.month, &s.dow} {
		b := []bounds{minutes, hours, doms, months, dows}[i]
		if i == 4 {
			f[4] = strings.ReplaceAll(f[4], "7", "0") // Sunday as 7
		}
		if *dst, err = parseField(f[i], b); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// parseField reads a comma-separated list of *, n, a-b, each with an optional /step.
func parseField(field string, b bounds) (uint64, error) {
	var bits uint64
	for _, expr := range strings.Split(field, ",") {
		rng, stepStr, hasStep := strings.Cut(expr, "/")
		lo, hi, step := b.min, b.max, 1
		switch {
		case rng == "*" || rng == "?":
		default:
			a, z, isRange := strings.Cut(rng, "-")
			var err error
			if lo, err = value(a, b); err != nil {
				return 0, err
			}
			hi = lo
			if isRange {
				if hi, err = value(z, b); err != nil {
					return 0, err
				}
			} else if hasStep {
				hi = b.max // "a/n" means a-max/n
			}
		}
		if hasStep {
			n, err := strconv.Atoi(stepStr)
			if err != nil || n <= 0 {
				return 0, fmt.Errorf("failed to parse int from %s: invalid step", stepStr)
			}
			step = n
		}
		if lo < b.min || hi > b.max || lo > hi {
			return 0, fmt.Errorf("beginning of range (%d) beyond end of range (%d) or outside %d-%d: %s", lo, hi, b.min, b.max, expr)
		}
		for v := lo; v <= hi; v += step {
			bits |= 1 << uint(v)
		}
	}
	return bits, nil
}

func value(s string, b bounds) (int, error) {
	if v, ok := b.names[strings.ToLower(s)]; ok {
		return v, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("failed to parse int from %s: %w", s, err)
	}
	return v, nil
}

func has(bits uint64, v int) bool { return bits&(1<<uint(v)) != 0 }

// dayMatches applies cron's rule: with both day fields restricted, either may match.
func (s *Schedule) dayMatches(t time.Time) bool {
	dom, dow := has(s.dom, t.Day()), has(s.dow, int(t.Weekday()))
	if s.domStar || s.dowStar {
		return dom && dow
	}
	return dom || dow
}

// Next returns the first activation strictly after t (in t's location), or the
// zero time if there is none within five years.
func (s *Schedule) Next(t time.Time) time.Time {
	if s.every > 0 {
		return t.Add(s.every - time.Duration(t.Nanosecond())*time.Nanosecond)
	}
	t = t.Truncate(time.Minute).Add(time.Minute)
	limit := t.AddDate(5, 0, 0)
	for t.Before(limit) {
		switch {
		case !has(s.month, int(t.Month())):
			t = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, t.Location())
		case !s.dayMatches(t):
			t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, t.Location())
		case !has(s.hour, t.Hour()):
			t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour()+1, 0, 0, 0, t.Location())
		case !has(s.minute, t.Minute()):
			t = t.Add(time.Minute)
		default:
			return t
		}
	}
	return time.Time{}
}
