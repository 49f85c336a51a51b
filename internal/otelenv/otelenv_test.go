package otelenv

import (
	"slices"
	"strings"
	"testing"
)

func TestParseResourceAttributes(t *testing.T) {
	tests := []struct {
		in   string
		want []Attribute
	}{
		{"", nil},
		{"  ", nil},
		{"service.name=web", []Attribute{{"service.name", "web"}}},
		{"service.name=web,deployment.environment.name=prod,team=core",
			[]Attribute{{"service.name", "web"}, {"deployment.environment.name", "prod"}, {"team", "core"}}},
		{" service.name = web , team\t=\tcore ", []Attribute{{"service.name", "web"}, {"team", "core"}}},
		{"note=a%2Cb%3Dc%20d", []Attribute{{"note", "a,b=c d"}}},
		{"a%20key=v", []Attribute{{"a key", "v"}}},
		{"plus=a+b", []Attribute{{"plus", "a+b"}}},
		{"utf8=%E6%9D%B1%E4%BA%AC", []Attribute{{"utf8", "東京"}}},
		{"empty=", []Attribute{{"empty", ""}}},
		{"eq=a=b", []Attribute{{"eq", "a=b"}}},
		{"spaced=%20x%20", []Attribute{{"spaced", " x "}}},
		{"a=1,b=2,a=3", []Attribute{{"a", "3"}, {"b", "2"}}},
	}
	for _, tt := range tests {
		got, err := ParseResourceAttributes(tt.in)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("ParseResourceAttributes(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestParseResourceAttributesErrors(t *testing.T) {
	tests := []struct{ in, err string }{
		{"service.name", `OTEL_RESOURCE_ATTRIBUTES: entry 1 "service.name": no '='`},
		{"a=1,b", `OTEL_RESOURCE_ATTRIBUTES: entry 2 "b": no '='`},
		{"a=1,", `OTEL_RESOURCE_ATTRIBUTES: entry 2 "": no '='`},
		{"a=1,,b=2", `OTEL_RESOURCE_ATTRIBUTES: entry 2 "": no '='`},
		{"=v", `OTEL_RESOURCE_ATTRIBUTES: entry 1 "=v": empty key`},
		{"a=1, =2", `OTEL_RESOURCE_ATTRIBUTES: entry 2 " =2": empty key`},
		{"a=%zz", `OTEL_RESOURCE_ATTRIBUTES: entry 1: value of "a": bad percent escape`},
		{"a=1,b=50%", `OTEL_RESOURCE_ATTRIBUTES: entry 2: value of "b": bad percent escape`},
		{"k%4=v", `OTEL_RESOURCE_ATTRIBUTES: entry 1: key "k%4": bad percent escape`},
		{"ok=1,bad=%\nx", `OTEL_RESOURCE_ATTRIBUTES: entry 2: value of "bad": bad percent escape`},
	}
	for _, tt := range tests {
		got, err := ParseResourceAttributes(tt.in)
		if err == nil || err.Error() != tt.err || got != nil {
			t.Errorf("ParseResourceAttributes(%q) = %q, %v; want the error %s", tt.in, got, err, tt.err)
			continue
		}
		if strings.ContainsAny(err.Error(), "\r\n") {
			t.Errorf("ParseResourceAttributes(%q): error of more than one line: %q", tt.in, err)
		}
	}
}
