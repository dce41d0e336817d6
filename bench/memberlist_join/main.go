// memberlist_join: the memberlist side of rollcall's udp_join bench.
//
// N members (200 by default) in one process, each bound to its own loopback
// address (127.0.S.1 .. 127.0.S.N, one port), started one after another as
// fast as memberlist.Create returns, each joining the first one
// (memberlist.Join, which returns after its TCP push-pull with the seed; a
// failed Join is retried up to twice and counted).
// Measures the time from the last start until every member's NumMembers()
// is N, polled every 50 ms, with a hard timeout; repeats -runs times on the
// next /24 each time (shutting every member down in between) and prints
// each run, the median and the process RSS.
//
// Builds offline against Debian's golang-github-hashicorp-memberlist-dev
// (memberlist 0.2.2):
//
//	cd bench/memberlist_join
//	GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE=$(mktemp -d) go build .
//	./memberlist_join -profile local -runs 5
package main

import (
	"flag"
	"fmt"
	"io/ioutil"
	"log"
	"os"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/memberlist"
)

func procStatusKiB(field string) int {
	b, err := ioutil.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field) {
			var kib int
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(line, field)), "%d", &kib)
			return kib
		}
	}
	return 0
}

// cpuTime is the process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func config(profile string, addr string, port int, name string) *memberlist.Config {
	var c *memberlist.Config
	if profile == "lan" {
		c = memberlist.DefaultLANConfig()
	} else {
		c = memberlist.DefaultLocalConfig()
	}
	c.Name = name
	c.BindAddr = addr
	c.BindPort = port
	c.AdvertiseAddr = addr
	c.AdvertisePort = port
	c.LogOutput = ioutil.Discard
	return c
}

type run struct {
	converged bool
	elapsed   time.Duration
	startAll  time.Duration
	// when 90 % and 99 % of the (member, member) pairs were seen; 0 if never
	milestones [2]time.Duration
	cpu        time.Duration
	// failed Join calls that were retried
	joinRetries int
	fraction    float64
	complete    int
	rssKiB      int
}

func runOnce(profile string, n int, subnet int, port int, timeout time.Duration) (run, error) {
	var r run
	members := make([]*memberlist.Memberlist, 0, n)
	defer func() {
		for i := len(members) - 1; i >= 0; i-- {
			members[i].Shutdown()
		}
	}()
	seed := fmt.Sprintf("127.0.%d.1:%d", subnet, port)
	cpuStart := cpuTime()
	first := time.Now()
	for i := 1; i <= n; i++ {
		addr := fmt.Sprintf("127.0.%d.%d", subnet, i)
		m, err := memberlist.Create(config(profile, addr, port, fmt.Sprintf("m@%s", addr)))
		if err != nil {
			return r, fmt.Errorf("create %s: %v", addr, err)
		}
		members = append(members, m)
		if i > 1 {
			// The local profile's 1 s TCP timeout can expire while the seed
			// serves a burst of push-pulls: retry, as an application would.
			var err error
			for try := 0; try < 3; try++ {
				if _, err = m.Join([]string{seed}); err == nil {
					break
				}
				r.joinRetries++
			}
			if err != nil {
				return r, fmt.Errorf("join %s: %v", addr, err)
			}
		}
	}
	last := time.Now()
	r.startAll = last.Sub(first)
	deadline := last.Add(timeout)
	pairs := n * (n - 1)
	for {
		seen := 0
		for _, m := range members {
			k := m.NumMembers() - 1
			if k > n-1 {
				k = n - 1
			}
			seen += k
		}
		for i, share := range []float64{0.90, 0.99} {
			if r.milestones[i] == 0 && float64(seen) >= share*float64(pairs) {
				r.milestones[i] = time.Since(last)
			}
		}
		if seen == pairs {
			r.converged = true
			r.elapsed = time.Since(last)
			break
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.cpu = cpuTime() - cpuStart
	seen := 0
	for _, m := range members {
		k := m.NumMembers() - 1
		if k > n-1 {
			k = n - 1
		}
		seen += k
		if k == n-1 {
			r.complete++
		}
	}
	r.fraction = float64(seen) / float64(n*(n-1))
	r.rssKiB = procStatusKiB("VmRSS:")
	return r, nil
}

func main() {
	profile := flag.String("profile", "local", "local (DefaultLocalConfig) or lan (DefaultLANConfig)")
	runs := flag.Int("runs", 5, "repetitions")
	n := flag.Int("nodes", 200, "members per run (2..254)")
	timeout := flag.Float64("timeout", 60, "seconds before a run counts as not converged")
	subnet := flag.Int("subnet", 40, "the first run's 127.0.S.x")
	port := flag.Int("port", 7946, "the port every member binds")
	flag.Parse()
	if *profile != "local" && *profile != "lan" {
		log.Fatalf("unknown profile %s", *profile)
	}
	if *n < 2 || *n > 254 || *runs < 1 || *subnet+*runs > 256 {
		log.Fatal("need 2 <= nodes <= 254, runs >= 1, subnet + runs <= 256")
	}
	fmt.Printf("memberlist_join: %d members, profile %s, %d runs, timeout %.0f s, GOMAXPROCS default\n",
		*n, *profile, *runs, *timeout)
	var times []time.Duration
	ok := true
	for i := 0; i < *runs; i++ {
		s := *subnet + i
		r, err := runOnce(*profile, *n, s, *port, time.Duration(*timeout*float64(time.Second)))
		if err != nil {
			log.Fatal(err)
		}
		at := func(d time.Duration) string {
			if d == 0 {
				return "never"
			}
			return fmt.Sprintf("%.3f s", d.Seconds())
		}
		var result string
		if r.converged {
			times = append(times, r.elapsed)
			result = fmt.Sprintf("converged in %.3f s (90 %% of pairs at %s, 99 %% at %s)",
				r.elapsed.Seconds(), at(r.milestones[0]), at(r.milestones[1]))
		} else {
			ok = false
			result = fmt.Sprintf("NOT converged within %.0f s: %.4f of pairs seen, %d/%d nodes complete (90 %% of pairs at %s, 99 %% at %s)",
				*timeout, r.fraction, r.complete, *n, at(r.milestones[0]), at(r.milestones[1]))
		}
		fmt.Printf("run %d (127.0.%d.x): %s after the last start (starting and joining all took %.3f s, %d join retries); CPU %.3f s; RSS %.1f MiB\n",
			i+1, s, result, r.startAll.Seconds(), r.joinRetries, r.cpu.Seconds(), float64(r.rssKiB)/1024)
		time.Sleep(500 * time.Millisecond)
	}
	sort.Slice(times, func(a, b int) bool { return times[a] < times[b] })
	if len(times) == *runs {
		mid := len(times) / 2
		median := times[mid]
		if len(times)%2 == 0 {
			median = (times[mid-1] + times[mid]) / 2
		}
		fmt.Printf("median of %d runs: %.3f s\n", *runs, median.Seconds())
	} else {
		fmt.Printf("median: not defined, %d of %d runs did not converge\n", *runs-len(times), *runs)
	}
	fmt.Printf("process RSS now %.1f MiB, peak %.1f MiB\n",
		float64(procStatusKiB("VmRSS:"))/1024, float64(procStatusKiB("VmHWM:"))/1024)
	if !ok {
		os.Exit(1)
	}
}
