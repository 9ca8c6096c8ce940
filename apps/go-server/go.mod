module stagelab.example/go-server

go 1.22
