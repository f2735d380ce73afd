module github.com/microloop/microloop/bindings/go

go 1.22
