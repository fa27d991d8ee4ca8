#!/bin/bash
# Prefilter switch point (bench/README.md): median of 3 whole `dsar run`s per batch size k (the first k
# requests of bench/out/requests/b100), the token path (DSAR_SCAN_PREFILTER=off) against the prefilter
# forced on (DSAR_SCAN_PREFILTER_MAX=100000). Usage: bench/prefilter-sweep.sh BIN [bench/out]
BIN=$1; B=${2:-bench/out}; T=$(mktemp -d)
for k in 1 5 10 20 40; do
  R=$T/req$k; rm -rf $R; mkdir -p $R
  ls $B/requests/b100 | sort | head -$k | while read f; do cp $B/requests/b100/$f $R/; done
  for mode in off on; do
    ts=()
    for i in 1 2 3; do
      W=$T/w; rm -rf $W; mkdir -p $W
      $BIN init --spool $W/spool --log-format json >/dev/null 2>&1
      $BIN keygen --out $W/team >/dev/null 2>&1
      echo "recipients: [ $(cat $W/team/age.pub) ]" > $W/spool/config.yaml
      cp $R/* $W/spool/inbox/
      if [ $mode = off ]; then E="DSAR_SCAN_PREFILTER=off"; else E="DSAR_SCAN_PREFILTER_MAX=100000"; fi
      s=$(date +%s.%N); env $E $BIN run --settle 0 --connectors $B/connectors --spool $W/spool --log-format json >/dev/null 2>$W/err; rc=$?
      e=$(date +%s.%N); ts+=($(python3 -c "print(round($e-$s,3))"))
      n=$($BIN status --json --spool $W/spool --log-format json 2>/dev/null | python3 -c "import json,sys; j=json.load(sys.stdin); print(sum(int(c.get('records',0)) for x in j for c in x.get('connectors',[])), sum(1 for x in j if x['status']=='COMPLETED'))")
    done
    med=$(printf "%s\n" "${ts[@]}" | sort -n | sed -n 2p)
    echo "k=$k mode=$mode median=$med runs=${ts[*]} records/completed=$n rc=$rc"
  done
done
