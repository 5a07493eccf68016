package gateway

import "testing"

func TestIsKeyParam(t *testing.T) {
	for name, want := range map[string]bool{
		"key": true, "KEY": true, "Key": true, "%6bey": true, "%6Bey": true, "ke%79": true, "%4B%45%59": true,
		"$key": true, "%24key": true, "%24KEY": true, "access_token": true, "ACCESS%5FTOKEN": true,
		"": false, "ke": false, "keys": false, "apikey": false, "key ": false, "%6": false, "ke%7": false,
		"%256bey": false, "k%65y%": false, "alt": false, "oauth_token_x": false, "access_token_": false,
	} {
		if got := isKeyParam([]byte(name)); got != want {
			t.Errorf("%q: %v, want %v", name, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { isKeyParam([]byte("ke%79")) }); n != 0 {
		t.Errorf("%v allocations", n)
	}
}
