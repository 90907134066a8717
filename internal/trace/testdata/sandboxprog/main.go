// Command sandboxprog is a server and its client for the tests of Sandbox
// and Options.Probe. Build with: CGO_ENABLED=0 go build -o sandboxprog .
//
// Usage:
//
//	sandboxprog serve NETWORK ADDRESS FILE   answer each connection with FILE, read then; exit 0 on SIGTERM
//	sandboxprog stubborn NETWORK ADDRESS     listen, and ignore SIGTERM
//	sandboxprog get NETWORK ADDRESS          print what the server answers
//	sandboxprog escape PATH                  leave a chroot the classic way (chroot into a subdirectory,
//	                                         then ".." past it), and print whether PATH exists there
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) == 3 && os.Args[1] == "escape" {
		escape(os.Args[2])
		return
	}
	if len(os.Args) < 4 {
		fail(fmt.Errorf("usage: %s serve|stubborn|get NETWORK ADDRESS [FILE]", os.Args[0]))
	}
	mode, network, address := os.Args[1], os.Args[2], os.Args[3]
	switch mode {
	case "serve", "stubborn":
		if mode == "stubborn" {
			signal.Ignore(syscall.SIGTERM)
		} else {
			term := make(chan os.Signal, 1)
			signal.Notify(term, syscall.SIGTERM)
			go func() {
				<-term
				os.Exit(0)
			}()
		}
		l, err := net.Listen(network, address)
		if err != nil {
			fail(err)
		}
		for {
			c, err := l.Accept()
			if err != nil {
				fail(err)
			}
			if mode == "serve" && len(os.Args) > 4 {
				if b, err := os.ReadFile(os.Args[4]); err == nil {
					_, _ = c.Write(b)
				} else {
					fmt.Fprintln(c, err)
				}
			}
			_ = c.Close()
		}
	case "get":
		c, err := net.Dial(network, address)
		if err != nil {
			fail(err)
		}
		if _, err := io.Copy(os.Stdout, c); err != nil {
			fail(err)
		}
	default:
		fail(fmt.Errorf("unknown mode %q", mode))
	}
}

func escape(path string) {
	if err := os.MkdirAll("/escape", 0o700); err != nil {
		fail(err)
	}
	if err := syscall.Chroot("/escape"); err != nil {
		fail(fmt.Errorf("chroot /escape: %w", err))
	}
	for range 64 {
		if err := syscall.Chdir(".."); err != nil {
			fail(fmt.Errorf("chdir ..: %w", err))
		}
	}
	if err := syscall.Chroot("."); err != nil {
		fail(fmt.Errorf("chroot .: %w", err))
	}
	if _, err := os.Stat(path); err != nil {
		fmt.Println("hidden:", err)
		return
	}
	fmt.Println("visible")
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "sandboxprog:", err)
	os.Exit(2)
}
