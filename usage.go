package main

import (
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"
)

// macaque lists its settings itself rather than through envconfig.Usagef: Usagef executes a
// text/template, and a template's reflective method calls make the linker keep every exported
// method of every type the binary holds. Measured on c2504ab: 20,009,120 bytes stripped with
// Usagef, 15,581,344 without. TestUsageIsEnvconfigs keeps the two outputs byte for byte alike.

// setting is one field of Config as envconfig reads it.
type setting struct {
	key      string // the variable's name, MACAQUE_ and the field's split_words name
	typ      string // as envconfig's usage names the field's type
	def      string // the default tag
	required bool
	desc     string
}

// The word splitting of envconfig's split_words (its gatherRegexp and acronymRegexp), so that
// AllowFastSchedule is ALLOW_FAST_SCHEDULE and SlackAPIUrl is SLACK_API_URL.
var (
	settingWords   = regexp.MustCompile("([^A-Z]+|[A-Z]+[^A-Z]+|[A-Z]+)")
	settingAcronym = regexp.MustCompile("([A-Z]+)([A-Z][^A-Z]+)")
)

// settingKey is the variable envconfig reads field from, with split_words.
func settingKey(field string) string {
	var words []string
	for _, w := range settingWords.FindAllString(field, -1) {
		if m := settingAcronym.FindStringSubmatch(w); len(m) == 3 {
			words = append(words, m[1], m[2])
		} else {
			words = append(words, w)
		}
	}
	return strings.ToUpper(envPrefix + "_" + strings.Join(words, "_"))
}

// settingType names t as envconfig's usage does, for the kinds Config uses.
func settingType(t reflect.Type) string {
	if t == reflect.TypeFor[time.Duration]() {
		return "Duration"
	}
	if t.Kind() == reflect.Bool {
		return "True or False"
	}
	if t.Kind() == reflect.String {
		return "String"
	}
	return t.String()
}

// settingsOf lists Config's fields, in order, as the variables they are read from.
func settingsOf() []setting {
	t := reflect.TypeFor[Config]()
	out := make([]setting, 0, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		out = append(out, setting{key: settingKey(f.Name), typ: settingType(f.Type), def: f.Tag.Get("default"),
			required: f.Tag.Get("required") == "true", desc: f.Tag.Get("desc")})
	}
	return out
}

// knownSettings lists the variables Config is read from.
func knownSettings() []string {
	var keys []string
	for _, s := range settingsOf() {
		keys = append(keys, s.key)
	}
	return keys
}

// usageTable writes the settings as envconfig's DefaultTableFormat lays them out: a header,
// then one tab-separated row per setting, for w to align.
func usageTable(w io.Writer) error {
	_, err := io.WriteString(w, "This application is configured via the environment. The following environment\nvariables can be used:\n\nKEY\tTYPE\tDEFAULT\tREQUIRED\tDESCRIPTION\n")
	for _, s := range settingsOf() {
		if err != nil {
			break
		}
		required := ""
		if s.required {
			required = "true"
		}
		_, err = fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", s.key, s.typ, s.def, required, s.desc)
	}
	return err
}

// printUsage writes the settings table that `macaque -h` shows.
func printUsage(w io.Writer) error {
	fmt.Fprintf(w, "macaque deletes one random Running pod on a cron schedule and reports it to Slack.\n\n")
	tabs := tabwriter.NewWriter(w, 1, 0, 2, ' ', 0)
	if err := usageTable(tabs); err != nil {
		return fmt.Errorf("print usage: %w", err)
	}
	if err := tabs.Flush(); err != nil {
		return fmt.Errorf("print usage: %w", err)
	}
	fmt.Fprint(w, usageNotes)
	return nil
}
