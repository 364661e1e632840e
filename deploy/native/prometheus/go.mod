// Wrapper module that builds Prometheus 3 and promtool (scripts/native_build.sh
// prometheus). Prometheus 3.X.Y is the Go version v0.3XX.Y: v0.313.1 is
// v3.13.1 (PROMETHEUS_IMAGE in .env; tests/bundle/check.sh holds the two
// equal). `go install ...@v0.313.1` refuses its go.mod's exclude and replace
// directives (prometheus#9958), so they are copied here, where they apply.
module glasshouse.local/prometheus-build

go 1.25.0

require github.com/prometheus/prometheus v0.313.1

exclude github.com/linode/linodego v1.0.0

exclude (
	github.com/grpc-ecosystem/grpc-gateway v1.14.7
	google.golang.org/api v0.30.0
)

replace cloud.google.com/go => cloud.google.com/go v0.123.0

tool (
	github.com/prometheus/prometheus/cmd/prometheus
	github.com/prometheus/prometheus/cmd/promtool
)
