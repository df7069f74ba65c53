// Command apiserver-harness runs a real kube-apiserver backed by an embedded
// etcd, both in this one process and both bound to loopback only, so that
// tests can do server-side (dry-run) applies with strict field validation
// against real Kubernetes validation, defaulting and CRD/CEL evaluation, the
// way controller-runtime's envtest does, but without downloading binaries.
//
// Usage:
//
//	apiserver-harness -kubeconfig /tmp/x/kubeconfig [harness flags] [-- kube-apiserver flags]
//
// Once /readyz answers "ok" and the "default" namespace exists, it writes an
// admin kubeconfig (client certificate in group system:masters) to the given
// path and prints exactly one line to stdout:
//
//	ready <kubeconfig path>
//
// It shuts down cleanly on SIGTERM or SIGINT and, unless -watch-stdin=false,
// when its standard input reaches EOF, so a parent that dies (and so closes
// the pipe) never leaves it running. Everything else it prints (klog, etcd's
// zap log) goes to stderr, or to -log-file.
//
// Every argument after "--" is parsed as a kube-apiserver flag, after the
// harness's own defaults, so it can override them (for example
// -- --authorization-mode=AlwaysAllow --feature-gates=Foo=true -v=2).
package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"go.etcd.io/etcd/client/pkg/v3/logutil"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/grpclog"

	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	basecompatibility "k8s.io/component-base/compatibility"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
	"k8s.io/kubernetes/cmd/kube-apiserver/app/options"
)

func main() {
	os.Exit(run())
}

type harnessFlags struct {
	kubeconfig   string
	dataDir      string
	logFile      string
	etcdLogLevel string
	grpcWarnings bool
	watchStdin   bool
	readyTimeout time.Duration
	stopTimeout  time.Duration
}

func run() int {
	var hf harnessFlags
	fl := flag.NewFlagSet("apiserver-harness", flag.ContinueOnError)
	fl.StringVar(&hf.kubeconfig, "kubeconfig", "", "where to write the admin kubeconfig (required)")
	fl.StringVar(&hf.dataDir, "data-dir", "", "directory for etcd data, certificates and keys; default: a fresh temporary directory, removed on exit")
	fl.StringVar(&hf.logFile, "log-file", "", "send everything that would go to stderr (klog, etcd, Go runtime) to this file instead")
	fl.StringVar(&hf.etcdLogLevel, "etcd-log-level", "error", "embedded etcd log level: debug, info, warn, error, panic, fatal")
	fl.BoolVar(&hf.grpcWarnings, "grpc-warnings", false, "log gRPC warnings (the etcd client logs dozens of harmless 'addrConn.createTransport failed ... operation was canceled' at start-up)")
	fl.BoolVar(&hf.watchStdin, "watch-stdin", true, "shut down when standard input reaches EOF (start it with stdin as a pipe, not /dev/null)")
	fl.DurationVar(&hf.readyTimeout, "ready-timeout", 3*time.Minute, "give up if the apiserver is not ready after this long")
	fl.DurationVar(&hf.stopTimeout, "stop-timeout", 30*time.Second, "how long to wait for a graceful apiserver shutdown")
	if err := fl.Parse(os.Args[1:]); err != nil {
		return 2
	}
	apiserverArgs := fl.Args() // everything after "--" (flag stops there)
	if hf.kubeconfig == "" {
		fmt.Fprintln(os.Stderr, "apiserver-harness: -kubeconfig is required")
		return 2
	}
	kubeconfigPath, err := filepath.Abs(hf.kubeconfig)
	if err != nil {
		fmt.Fprintln(os.Stderr, "apiserver-harness:", err)
		return 2
	}

	if hf.logFile != "" {
		f, err := os.OpenFile(hf.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, "apiserver-harness:", err)
			return 2
		}
		// Redirect fd 2 itself, so klog, etcd's zap logger, grpc and runtime
		// panics all end up in the file.
		if err := unix.Dup2(int(f.Fd()), 2); err != nil {
			fmt.Fprintln(os.Stderr, "apiserver-harness: redirecting stderr:", err)
			return 2
		}
	}

	if !hf.grpcWarnings {
		// k8s.io/apiserver/pkg/storage/etcd3 routes gRPC's logger to klog in
		// an init func; keep errors, drop warnings and info.
		grpclog.SetLoggerV2(grpclog.NewLoggerV2(io.Discard, io.Discard, os.Stderr))
	}

	// Root context: cancelled by the first SIGINT/SIGTERM or stdin EOF. A
	// second signal exits at once.
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	// A parent that died leaves our stdout/stderr pipes without a reader; by
	// default Go exits on SIGPIPE for fd 1 and 2, which would skip the
	// clean-up below. Ignore it, so such writes just fail.
	signal.Ignore(syscall.SIGPIPE)
	sigCh := make(chan os.Signal, 2)
	signal.Notify(sigCh, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sigCh
		cancel(fmt.Errorf("received %v", s))
		<-sigCh
		os.Exit(1)
	}()
	if hf.watchStdin {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			cancel(errors.New("stdin closed"))
		}()
	}

	code := 0
	if err := serve(ctx, hf, kubeconfigPath, apiserverArgs); err != nil {
		klog.Flush()
		fmt.Fprintln(os.Stderr, "apiserver-harness:", err)
		code = 1
	}
	klog.Flush()
	return code
}

func serve(ctx context.Context, hf harnessFlags, kubeconfigPath string, apiserverArgs []string) error {
	dir := hf.dataDir
	if dir == "" {
		d, err := os.MkdirTemp("", "apiserver-harness-")
		if err != nil {
			return err
		}
		dir = d
		defer os.RemoveAll(d)
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	certDir := filepath.Join(dir, "pki")
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		return err
	}
	p, err := writePKI(certDir)
	if err != nil {
		return fmt.Errorf("generating certificates: %w", err)
	}

	// ---- kube-apiserver flags (parsed before anything starts, to fail fast) ----
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	// Ports for the embedded etcd, chosen now so --etcd-servers can be
	// among the defaults (and be overridden to use an external etcd).
	etcdClientPort, err := freePort()
	if err != nil {
		return err
	}
	etcdPeerPort, err := freePort()
	if err != nil {
		return err
	}
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", etcdClientPort)

	s := options.NewServerRunOptions()
	fs := pflag.NewFlagSet("kube-apiserver", pflag.ContinueOnError)
	for _, f := range s.Flags().FlagSets {
		fs.AddFlagSet(f)
	}
	defaults := []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--cert-dir=" + certDir,
		"--tls-cert-file=" + p.serverCert,
		"--tls-private-key-file=" + p.serverKey,
		"--client-ca-file=" + p.caCert,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + p.saPub,
		"--service-account-signing-key-file=" + p.saKey,
		"--service-cluster-ip-range=10.96.0.0/12",
		"--authorization-mode=RBAC",
		// ServiceAccount admission rejects Pods whose service account does not
		// exist; nothing (no kube-controller-manager) creates "default" here.
		"--disable-admission-plugins=ServiceAccount",
		"--allow-privileged=true",
		// The lease reconciler would publish 127.0.0.1 as the endpoint of
		// the "kubernetes" Service, which validation refuses ("may not be
		// in the loopback range"), and log that every 10s.
		"--endpoint-reconciler-type=none",
	}
	if err := fs.Parse(append(defaults, apiserverArgs...)); err != nil {
		ln.Close()
		return fmt.Errorf("kube-apiserver flags: %w", err)
	}
	s.SecureServing.Listener = ln
	s.SecureServing.BindPort = port

	// ---- etcd ----
	if sl := s.Etcd.StorageConfig.Transport.ServerList; len(sl) == 1 && sl[0] == etcdURL {
		etcd, etcdLevel, err := startEtcd(ctx, filepath.Join(dir, "etcd"), etcdClientPort, etcdPeerPort, hf.etcdLogLevel)
		if err != nil {
			return fmt.Errorf("starting etcd: %w", err)
		}
		defer func() {
			// etcd's embed.Close logs "setting up serving from embedded etcd
			// failed ... server closed" at error level for every listener it
			// closes: not worth showing.
			etcdLevel.SetLevel(zap.FatalLevel)
			etcd.Close()
			<-etcd.Server.StopNotify()
		}()
	} // else: --etcd-servers was given, use that etcd

	if err := s.GenericServerRunOptions.ComponentGlobalsRegistry.Set(); err != nil {
		return err
	}
	featureGate := s.GenericServerRunOptions.ComponentGlobalsRegistry.FeatureGateFor(basecompatibility.DefaultKubeComponent)
	if featureGate == nil {
		featureGate = utilfeature.DefaultFeatureGate
	}
	if err := logsapi.ValidateAndApply(s.Logs, featureGate); err != nil {
		return err
	}
	// kube-apiserver's own loopback clients should not log self-issued warnings.
	rest.SetDefaultWarningHandler(rest.NoWarnings{})

	completed, err := s.Complete(ctx)
	if err != nil {
		return fmt.Errorf("completing kube-apiserver options: %w", err)
	}
	if errs := completed.Validate(); len(errs) != 0 {
		return utilerrors.NewAggregate(errs)
	}

	apiCtx, apiCancel := context.WithCancel(context.Background())
	defer apiCancel()
	apiDone := make(chan error, 1)
	go func() { apiDone <- app.Run(apiCtx, completed) }()
	stopAPIServer := func() error {
		apiCancel()
		select {
		case err := <-apiDone:
			return err
		case <-time.After(hf.stopTimeout):
			return fmt.Errorf("kube-apiserver did not stop within %v", hf.stopTimeout)
		}
	}

	server := fmt.Sprintf("https://127.0.0.1:%d", port)
	start := time.Now()
	if err := waitReady(ctx, apiDone, server, p, hf.readyTimeout); err != nil {
		if !errors.Is(err, errAPIServerExited) {
			_ = stopAPIServer()
		}
		return err
	}
	klog.InfoS("apiserver-harness: ready", "server", server, "after", time.Since(start))

	if err := writeKubeconfig(kubeconfigPath, server, p); err != nil {
		_ = stopAPIServer()
		return err
	}
	fmt.Fprintf(os.Stdout, "ready %s\n", kubeconfigPath)
	_ = os.Stdout.Sync()

	select {
	case <-ctx.Done():
		klog.InfoS("apiserver-harness: shutting down", "reason", context.Cause(ctx))
		return stopAPIServer()
	case err := <-apiDone:
		if err == nil {
			err = errors.New("kube-apiserver stopped unexpectedly")
		}
		return err
	}
}

// startEtcd runs a single-member etcd in this process on free loopback ports.
func startEtcd(ctx context.Context, dir string, clientPort, peerPort int, logLevel string) (*embed.Etcd, zap.AtomicLevel, error) {
	level := zap.NewAtomicLevelAt(logutil.ConvertToZapLevel(logLevel))
	cu := url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(clientPort))}
	pu := url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(peerPort))}

	cfg := embed.NewConfig()
	cfg.Name = "harness"
	cfg.Dir = dir
	cfg.ListenClientUrls = []url.URL{cu}
	cfg.AdvertiseClientUrls = []url.URL{cu}
	cfg.ListenPeerUrls = []url.URL{pu}
	cfg.AdvertisePeerUrls = []url.URL{pu}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.ListenMetricsUrls = nil
	cfg.LogLevel = logLevel
	cfg.LogOutputs = []string{"stderr"}
	zcfg := logutil.DefaultZapLoggerConfig
	zcfg.Level = level
	zcfg.OutputPaths = []string{"stderr"}
	zcfg.ErrorOutputPaths = []string{"stderr"}
	lg, err := zcfg.Build()
	if err != nil {
		return nil, level, err
	}
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(lg.Named("etcd"))
	cfg.UnsafeNoFsync = true // test data only: no fsync makes writes much cheaper
	cfg.EnableGRPCGateway = false
	cfg.QuotaBackendBytes = 2 << 30

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, level, err
	}
	select {
	case <-e.Server.ReadyNotify():
		return e, level, nil
	case err := <-e.Err():
		e.Close()
		return nil, level, err
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, level, errors.New("etcd not ready after 60s")
	case <-ctx.Done():
		e.Close()
		return nil, level, context.Cause(ctx)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

var errAPIServerExited = errors.New("kube-apiserver exited before it was ready")

// waitReady polls /readyz and then waits for the "default" namespace, which
// kube-apiserver's system-namespaces controller creates shortly after start.
func waitReady(ctx context.Context, apiDone <-chan error, server string, p *pki, timeout time.Duration) error {
	tlsCfg, err := p.clientTLS()
	if err != nil {
		return err
	}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	defer c.CloseIdleConnections()
	deadline := time.Now().Add(timeout)
	last := ""
	for _, path := range []string{"/readyz", "/api/v1/namespaces/default"} {
		for {
			resp, err := c.Get(server + path)
			if err == nil {
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
				last = fmt.Sprintf("GET %s: %d %s", path, resp.StatusCode, strings.TrimSpace(string(body)))
			} else {
				last = err.Error()
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("not ready after %v: %s", timeout, last)
			}
			select {
			case err := <-apiDone:
				return fmt.Errorf("%w: %v", errAPIServerExited, err)
			case <-ctx.Done():
				return context.Cause(ctx)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

func writeKubeconfig(path, server string, p *pki) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["harness"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: p.caPEM}
	cfg.AuthInfos["harness-admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: p.adminCertPEM, ClientKeyData: p.adminKeyPEM}
	cfg.Contexts["harness"] = &clientcmdapi.Context{Cluster: "harness", AuthInfo: "harness-admin", Namespace: "default"}
	cfg.CurrentContext = "harness"
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ---- certificates ----

type pki struct {
	caCert, serverCert, serverKey, saKey, saPub string // file paths
	caPEM, adminCertPEM, adminKeyPEM            []byte
}

func (p *pki) clientTLS() (*tls.Config, error) {
	pair, err := tls.X509KeyPair(p.adminCertPEM, p.adminKeyPEM)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.caPEM)
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}

// writePKI makes one CA that signs both the serving certificate and the admin
// client certificate (CN=harness-admin, O=system:masters, which kube-apiserver
// authorizes for everything whatever the authorization mode), plus the
// service-account signing key pair.
func writePKI(dir string) (*pki, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "apiserver-harness-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}

	leaf := func(tmpl *x509.Certificate) ([]byte, []byte, error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		tmpl.SerialNumber = serial()
		tmpl.NotBefore = now.Add(-time.Hour)
		tmpl.NotAfter = now.Add(10 * 365 * 24 * time.Hour)
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.BasicConstraintsValid = true
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
		if err != nil {
			return nil, nil, err
		}
		kp, err := keyPEM(key)
		if err != nil {
			return nil, nil, err
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), kp, nil
	}

	serverCertPEM, serverKeyPEM, err := leaf(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1"), net.ParseIP("10.96.0.1")},
	})
	if err != nil {
		return nil, err
	}
	adminCertPEM, adminKeyPEM, err := leaf(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "harness-admin", Organization: []string{"system:masters"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return nil, err
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	saKeyPEM, err := keyPEM(saKey)
	if err != nil {
		return nil, err
	}
	saPubDER, err := x509.MarshalPKIXPublicKey(saKey.Public())
	if err != nil {
		return nil, err
	}

	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	p := &pki{
		caCert:       filepath.Join(dir, "ca.crt"),
		serverCert:   filepath.Join(dir, "apiserver.crt"),
		serverKey:    filepath.Join(dir, "apiserver.key"),
		saKey:        filepath.Join(dir, "sa.key"),
		saPub:        filepath.Join(dir, "sa.pub"),
		caPEM:        caPEM,
		adminCertPEM: adminCertPEM,
		adminKeyPEM:  adminKeyPEM,
	}
	files := map[string][]byte{
		p.caCert:                        caPEM,
		p.serverCert:                    append(serverCertPEM, caPEM...),
		p.serverKey:                     serverKeyPEM,
		p.saKey:                         saKeyPEM,
		p.saPub:                         pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPubDER}),
		filepath.Join(dir, "admin.crt"): adminCertPEM,
		filepath.Join(dir, "admin.key"): adminKeyPEM,
	}
	for name, data := range files {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func keyPEM(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		panic(err)
	}
	return n.Add(n, big.NewInt(1))
}
