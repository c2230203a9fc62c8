module nanofaas.example/go-binary

go 1.22
