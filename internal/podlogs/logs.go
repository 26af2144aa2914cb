// Package podlogs keeps container logs in the CRI format the kubelet uses: one
// file per container instance, written, rotated and read (for kubectl logs).
package podlogs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Logs are kept as the kubelet keeps them, in the CRI format, one
// file per container instance: "<RFC3339Nano> <stream> <F|P> <message>", with
// P marking a partial line. A file larger than the limit is rotated to
// <file>.1 (one rotation kept), as kubelet's containerLogMaxSize/MaxFiles do.

// Writer is the writing side of one container instance's log.
type Writer struct {
	mu      sync.Mutex
	path    string
	f       *os.File
	size    int64
	max     int64
	now     func() time.Time
	partial map[string][]byte
}

// maxLine is where a line without a newline is cut into partial records.
const maxLine = 16 * 1024

// Open opens (appending) the log at path, rotated past max bytes (0: never);
// now stamps the records.
func Open(path string, max int64, now func() time.Time) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, err
	}
	st, _ := f.Stat()
	return &Writer{path: path, f: f, size: st.Size(), max: max, now: now, partial: map[string][]byte{}}, nil
}

// Write records output of stream (stdout or stderr), line by line.
func (l *Writer) Write(stream string, p []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	buf := append(l.partial[stream], p...)
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			break
		}
		l.record(stream, "F", buf[:i])
		buf = buf[i+1:]
	}
	for len(buf) >= maxLine {
		l.record(stream, "P", buf[:maxLine])
		buf = buf[maxLine:]
	}
	l.partial[stream] = append([]byte(nil), buf...)
}

func (l *Writer) record(stream, tag string, msg []byte) {
	if l.f == nil {
		return
	}
	line := make([]byte, 0, len(msg)+48)
	line = l.now().UTC().AppendFormat(line, time.RFC3339Nano)
	line = append(line, ' ')
	line = append(line, stream...)
	line = append(line, ' ')
	line = append(line, tag...)
	line = append(line, ' ')
	line = append(line, msg...)
	line = append(line, '\n')
	n, _ := l.f.Write(line)
	l.size += int64(n)
	if l.max > 0 && l.size > l.max {
		l.rotate()
	}
}

func (l *Writer) rotate() {
	l.f.Close()
	_ = os.Rename(l.path, l.path+".1")
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		l.f = nil
		return
	}
	l.f, l.size = f, 0
}

// Close writes what is left of unfinished lines and closes the file.
func (l *Writer) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, stream := range []string{"stdout", "stderr"} {
		if len(l.partial[stream]) > 0 {
			l.record(stream, "F", l.partial[stream])
		}
	}
	l.partial = map[string][]byte{}
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// Options are the kubectl logs options a read implements.
type Options struct {
	Follow     bool
	Previous   bool
	Timestamps bool
	TailLines  *int64
	SinceTime  *time.Time
	LimitBytes *int64
}

// logRecord is one parsed line of a log file.
type logRecord struct {
	ts      []byte
	t       time.Time
	partial bool
	msg     []byte
}

func parseRecord(line []byte) (logRecord, bool) {
	parts := bytes.SplitN(line, []byte{' '}, 4)
	if len(parts) < 3 {
		return logRecord{}, false
	}
	r := logRecord{ts: parts[0], partial: string(parts[2]) == "P"}
	r.t, _ = time.Parse(time.RFC3339Nano, string(parts[0]))
	if len(parts) == 4 {
		r.msg = parts[3]
	}
	return r, true
}

// errLimit ends a read at limitBytes.
var errLimit = errors.New("log limit reached")

type limitWriter struct {
	w    io.Writer
	left int64
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.left {
		n, _ := l.w.Write(p[:l.left])
		l.left = 0
		return n, errLimit
	}
	l.left -= int64(len(p))
	return l.w.Write(p)
}

// emit writes one record the way kubectl shows it.
func emit(w io.Writer, r logRecord, o Options) error {
	if o.SinceTime != nil && r.t.Before(*o.SinceTime) {
		return nil
	}
	var b []byte
	if o.Timestamps {
		b = append(append(b, r.ts...), ' ')
	}
	b = append(b, r.msg...)
	if !r.partial {
		b = append(b, '\n')
	}
	_, err := w.Write(b)
	return err
}

// Read copies the instance log at path (after its rotated part) to w;
// with Follow it goes on until running reports the instance has ended and the
// file is drained, or ctx ends. A missing file reads as empty.
func Read(ctx context.Context, path string, o Options, w io.Writer, running func() bool) error {
	flusher, _ := w.(interface{ Flush() })
	if o.LimitBytes != nil {
		w = &limitWriter{w: w, left: *o.LimitBytes}
	}
	cur, err := os.Open(path) // opened first: what is written while reading comes after
	if err != nil {
		return nil
	}
	defer func() { cur.Close() }()
	var recs []logRecord
	for i, p := range []string{path + ".1", path} {
		var data []byte
		if i == 0 {
			data, err = os.ReadFile(p)
		} else {
			data, err = io.ReadAll(cur)
		}
		if err != nil {
			continue
		}
		for _, line := range bytes.Split(bytes.TrimSuffix(data, []byte{'\n'}), []byte{'\n'}) {
			if r, ok := parseRecord(line); ok {
				recs = append(recs, r)
			}
		}
	}
	if o.TailLines != nil {
		full, start := int64(0), len(recs)
		for start > 0 && full < *o.TailLines {
			start--
			if !recs[start].partial {
				full++
			}
			for start > 0 && recs[start-1].partial { // keep a line's partial pieces together
				start--
			}
		}
		recs = recs[start:]
	}
	for _, r := range recs {
		if err := emit(w, r, o); err != nil {
			return ignoreLimit(err)
		}
	}
	if !o.Follow {
		return nil
	}
	offset, _ := cur.Seek(0, io.SeekCurrent)
	rd := bufio.NewReader(cur)
	var pending []byte
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		alive := running()
		for {
			line, err := rd.ReadBytes('\n')
			if err != nil {
				pending = append(pending, line...)
				break
			}
			offset += int64(len(line))
			line = append(pending, line...)
			pending = nil
			if r, ok := parseRecord(bytes.TrimSuffix(line, []byte{'\n'})); ok {
				if err := emit(w, r, o); err != nil {
					return ignoreLimit(err)
				}
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if !alive {
			return nil
		}
		if st, err := os.Stat(path); err == nil && st.Size() < offset { // rotated: start on the new file
			cur.Close()
			if cur, err = os.Open(path); err != nil {
				return nil
			}
			rd, offset, pending = bufio.NewReader(cur), 0, nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func ignoreLimit(err error) error {
	if errors.Is(err, errLimit) || strings.Contains(err.Error(), "broken pipe") {
		return nil
	}
	return err
}

// NotFoundError says a pod, container or log asked for does not exist here.
type NotFoundError struct{ msg string }

// NewNotFound returns a NotFoundError with message msg.
func NewNotFound(msg string) *NotFoundError { return &NotFoundError{msg} }

func (e *NotFoundError) Error() string { return e.msg }
