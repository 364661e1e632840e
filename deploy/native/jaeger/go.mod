// Wrapper module that builds Jaeger v2's cmd/jaeger (scripts/native_build.sh
// jaeger). Jaeger's module path has no /v2, so its v2 releases are published
// as v1 Go versions: v1.76.0 is the v2.13.0 commit (JAEGER_IMAGE in .env;
// tests/bundle/check.sh holds the two equal: 1.(minor+63).patch). `go install
// ...@v1.76.0` refuses the replace below (jaeger#7310), so it is copied here,
// where it applies.
module glasshouse.local/jaeger-build

go 1.24.6

require github.com/jaegertracing/jaeger v1.76.0

replace github.com/Shopify/sarama => github.com/Shopify/sarama v1.33.0

tool github.com/jaegertracing/jaeger/cmd/jaeger
