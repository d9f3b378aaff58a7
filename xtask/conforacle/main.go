// conforacle: parse a NATS server configuration file with the conf package of
// nats-server (v2.9.10 as installed in GOPATH) and print the result as
// canonical typed JSON, or the parse error, also as typed JSON.
//
// Usage: conforacle [-pedantic] [-positions] [-env FILE.json] CONFIG_FILE
//
//   -pedantic   parse with conf.ParseFileWithChecks (what `nats-server -c` uses)
//               instead of conf.ParseFile
//   -positions  (implies -pedantic) annotate every value with the line, pos and
//               file recorded in the pedantic-mode token
//   -env FILE   replace the whole process environment by the string->string
//               JSON object in FILE before parsing (for $VAR fallback tests)
//
// Exit status: 0 parsed, 1 parse error, 2 usage / bad -env file.
// Output (stdout, one line, ends with "\n"):
//   success: {"map":{...}}           (the typed top-level map)
//   failure: {"error":{"str":"..."}} (the typed error text)
package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats-server/conf"
)

// tokenLike matches the unexported *conf.token used in pedantic mode.
type tokenLike interface {
	Value() interface{}
	Line() int
	Position() int
	SourceFile() string
	IsUsedVariable() bool
}

// member is one "name":value pair of a JSON object; raw is already encoded.
type member struct {
	name string
	raw  []byte
}

// writeObject writes members sorted by the byte order of their names.
func writeObject(b *bytes.Buffer, ms []member) {
	sort.Slice(ms, func(i, j int) bool { return ms[i].name < ms[j].name })
	b.WriteByte('{')
	for i, m := range ms {
		if i > 0 {
			b.WriteByte(',')
		}
		writeJSONString(b, m.name)
		b.WriteByte(':')
		b.Write(m.raw)
	}
	b.WriteByte('}')
}

// writeJSONString writes a valid-UTF-8 string with serde_json's escaping:
// \" \\ \b \f \n \r \t, other C0 controls as \u00xx (lowercase), rest raw.
func writeJSONString(b *bytes.Buffer, s string) {
	const hexd = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if c < 0x20 {
				b.WriteString(`\u00`)
				b.WriteByte(hexd[c>>4])
				b.WriteByte(hexd[c&0xf])
			} else {
				b.WriteByte(c)
			}
		}
	}
	b.WriteByte('"')
}

func rawString(s string) []byte {
	var b bytes.Buffer
	writeJSONString(&b, s)
	return b.Bytes()
}

// typedString: {"str":"..."} for valid UTF-8, {"bytes":"<hex>"} otherwise.
func typedStringMember(s string) member {
	if utf8.ValidString(s) {
		return member{"str", rawString(s)}
	}
	return member{"bytes", rawString(hex.EncodeToString([]byte(s)))}
}

// keyName maps a map key to a JSON member name.
func keyName(k string) string {
	if utf8.ValidString(k) {
		return k
	}
	return "\x00bytes:" + hex.EncodeToString([]byte(k))
}

// formatFloat renders f like Rust's format!("{:e}", f): shortest round-trip
// digits, mantissa d[.ddd], exponent as a plain signed integer.
func formatFloat(f float64) string {
	s := strconv.FormatFloat(f, 'e', -1, 64)
	i := strings.IndexByte(s, 'e')
	exp, err := strconv.Atoi(s[i+1:])
	if err != nil {
		panic(err)
	}
	return s[:i] + "e" + strconv.Itoa(exp)
}

func encode(b *bytes.Buffer, v interface{}, positions bool) {
	var extra []member
	if tk, ok := v.(tokenLike); ok {
		if positions {
			extra = append(extra,
				member{"line", []byte(strconv.Itoa(tk.Line()))},
				member{"pos", []byte(strconv.Itoa(tk.Position()))},
				member{"file", rawString(tk.SourceFile())})
		}
		v = tk.Value()
	}
	var m member
	switch vv := v.(type) {
	case int64:
		m = member{"int", []byte(strconv.FormatInt(vv, 10))}
	case float64:
		m = member{"float", rawString(formatFloat(vv))}
	case bool:
		m = member{"bool", []byte(strconv.FormatBool(vv))}
	case string:
		m = typedStringMember(vv)
	case time.Time:
		m = member{"date", rawString(vv.UTC().Format(time.RFC3339))}
	case []interface{}:
		var ab bytes.Buffer
		ab.WriteByte('[')
		for i, e := range vv {
			if i > 0 {
				ab.WriteByte(',')
			}
			encode(&ab, e, positions)
		}
		ab.WriteByte(']')
		m = member{"array", ab.Bytes()}
	case map[string]interface{}:
		ms := make([]member, 0, len(vv))
		for k, e := range vv {
			var eb bytes.Buffer
			encode(&eb, e, positions)
			ms = append(ms, member{keyName(k), eb.Bytes()})
		}
		var mb bytes.Buffer
		writeObject(&mb, ms)
		m = member{"map", mb.Bytes()}
	default:
		m = member{"unknown", rawString(fmt.Sprintf("%T", v))}
	}
	writeObject(b, append(extra, m))
}

func main() {
	pedantic := flag.Bool("pedantic", false, "use conf.ParseFileWithChecks (as nats-server -c does)")
	positions := flag.Bool("positions", false, "annotate values with line/pos/file (implies -pedantic)")
	envFile := flag.String("env", "", "JSON object file; replaces the whole environment before parsing")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: conforacle [-pedantic] [-positions] [-env FILE.json] CONFIG_FILE")
		os.Exit(2)
	}
	if *envFile != "" {
		data, err := os.ReadFile(*envFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "conforacle: -env:", err)
			os.Exit(2)
		}
		env := map[string]string{}
		if err := json.Unmarshal(data, &env); err != nil {
			fmt.Fprintln(os.Stderr, "conforacle: -env:", err)
			os.Exit(2)
		}
		os.Clearenv()
		for k, v := range env {
			os.Setenv(k, v)
		}
	}
	if *positions {
		*pedantic = true
	}
	var (
		m   map[string]interface{}
		err error
	)
	if *pedantic {
		m, err = conf.ParseFileWithChecks(flag.Arg(0))
	} else {
		m, err = conf.ParseFile(flag.Arg(0))
	}
	var b bytes.Buffer
	if err != nil {
		writeObject(&b, []member{{"error", func() []byte {
			var eb bytes.Buffer
			writeObject(&eb, []member{typedStringMember(err.Error())})
			return eb.Bytes()
		}()}})
		b.WriteByte('\n')
		os.Stdout.Write(b.Bytes())
		os.Exit(1)
	}
	encode(&b, m, *positions)
	b.WriteByte('\n')
	os.Stdout.Write(b.Bytes())
}
