// Command fakeprovider serves the fake OpenAI/Anthropic/Gemini API of package fakeprovider over
// HTTPS (HTTP/2 and HTTP/1.1), for the namespace end-to-end tests and benchmarks:
//
//	fakeprovider --listen 127.0.0.1:8443 --cert cert.pem --key key.pem --key-required sk-router
//
// With --selfsigned DIR instead of --cert/--key it makes a throwaway CA and a leaf for --names,
// and writes ca.pem, cert.pem and key.pem into DIR (give ca.pem to the client). --plain serves
// HTTP without TLS. It stops on SIGINT or SIGTERM.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/airelay/airelay/src/internal/fakeprovider"
	"github.com/airelay/airelay/src/testca"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8443", "address to serve on")
	certFile := flag.String("cert", "", "TLS certificate (PEM)")
	keyFile := flag.String("key", "", "TLS private key (PEM)")
	selfSigned := flag.String("selfsigned", "", "make a throwaway CA and leaf; write ca.pem, cert.pem, key.pem into this directory")
	names := flag.String("names", "localhost,127.0.0.1,api.openai.com,api.anthropic.com,generativelanguage.googleapis.com", "names of the --selfsigned leaf, comma separated")
	plain := flag.Bool("plain", false, "serve plain HTTP")
	apiKey := flag.String("key-required", "", "the only API key accepted (empty: any)")
	text := flag.String("text", "", "the answer (default: a short sentence)")
	inTok := flag.Int("input-tokens", 21, "input tokens reported")
	outTok := flag.Int("output-tokens", 0, "output tokens reported (0: one per word)")
	status := flag.Int("status", 0, "answer every request with this error status")
	hang := flag.Bool("hang", false, "never answer (until the client gives up)")
	gap := flag.Duration("gap", 0, "pause between stream events")
	dropAfter := flag.Int("drop-after", 0, "cut streams after this many events")
	flag.Parse()

	f := fakeprovider.New(*apiKey)
	f.Arrivals = nil
	if *text != "" {
		f.Text = *text
	}
	f.InputTokens, f.OutputTokens = *inTok, *outTok
	f.Status, f.Hang, f.Gap, f.DropAfter = *status, *hang, *gap, *dropAfter

	srv := &http.Server{Handler: f, ReadHeaderTimeout: 10 * time.Second}
	if !*plain {
		cert, err := loadCert(*certFile, *keyFile, *selfSigned, *names)
		if err != nil {
			log.Fatalf("fakeprovider: %v", err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("fakeprovider: %v", err)
	}
	fmt.Printf("fakeprovider: serving on %s (tls=%v)\n", ln.Addr(), !*plain)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if *plain {
		err = srv.Serve(ln)
	} else {
		err = srv.ServeTLS(ln, "", "")
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("fakeprovider: %v", err)
	}
}

func loadCert(certFile, keyFile, dir, names string) (tls.Certificate, error) {
	if dir == "" {
		if certFile == "" || keyFile == "" {
			return tls.Certificate{}, errors.New("give --cert and --key, --selfsigned DIR, or --plain")
		}
		return tls.LoadX509KeyPair(certFile, keyFile)
	}
	ca, err := testca.New("fakeprovider test CA")
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := ca.Leaf(strings.Split(names, ",")...)
	if err != nil {
		return tls.Certificate{}, err
	}
	if _, _, _, err := ca.WriteFiles(dir, leaf); err != nil {
		return tls.Certificate{}, err
	}
	return leaf, nil
}
