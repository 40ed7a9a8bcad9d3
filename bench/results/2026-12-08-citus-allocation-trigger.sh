#!/usr/bin/env bash
# EXPLAIN ANALYZE of a 12-row allocation INSERT (one conversion, 4 channels x 3 models), rolled back, in three
# interleaved variants: only the earlier row trigger (trg_attribution_allocations_verify_row, a distributed query
# per row), only the new statement trigger (trg_attribution_allocations_verify_shard, colocated shards), no
# verification trigger. One psql session per target (warm caches): the coordinator, then the worker's shard directly.
# Conversions alternate between one with a captured ledger row and one without.
# usage: measure3.sh DB ROUNDS
DB=$1; N=${2:-10}; OLD=trg_attribution_allocations_verify_row; NEW=trg_attribution_allocations_verify_shard
T=11111111-1111-1111-1111-111111111111
SHARD=$(psql -h 127.0.0.1 -U postgres -qAt -p 9720 -d $DB -c "SELECT shard_name('attribution_allocations'::regclass, get_shard_id_for_distribution_column('attribution_allocations', '$T'::uuid))")
NODE=$(psql -h 127.0.0.1 -U postgres -qAt -p 9720 -d $DB -c "SELECT nodeport FROM citus_shards WHERE shard_name = '$SHARD'")
echo "tenant's shard $SHARD on port $NODE; $N rounds; load: $(uptime)"
stmt() { local ev; ev=$(printf '00000000-0000-0000-0000-%012d' $1); echo "BEGIN; SET LOCAL app.current_tenant_id = '$T';"; echo "$2"; echo "EXPLAIN (ANALYZE, COSTS OFF) INSERT INTO $3 (tenant_id, event_id, channel_code, allocated_revenue_cents, allocation_ratio, model_version, model_type, confidence_score) VALUES"; first=1; for c in direct email organic referral; do for m in last_touch first_touch linear; do [ $first = 1 ] || echo ","; first=0; echo -n "('$T', '$ev', '$c', 250, 0.25, 'v1', '$m', 0.9)"; done; done; echo ";"; echo "ROLLBACK;"; }
for w in coord shard; do
  if [ $w = coord ]; then port=9720; tbl=attribution_allocations; so=$OLD; sn=$NEW; else port=$NODE; tbl=$SHARD; so=${OLD}_${SHARD##*_}; sn=${NEW}_${SHARD##*_}; fi
  for i in $(seq 1 $N); do k=$((i % 100 + 1))
    stmt $k "ALTER TABLE $tbl DISABLE TRIGGER $sn;" $tbl
    stmt $k "ALTER TABLE $tbl DISABLE TRIGGER $so;" $tbl
    stmt $k "ALTER TABLE $tbl DISABLE TRIGGER $so; ALTER TABLE $tbl DISABLE TRIGGER $sn;" $tbl
  done | psql -h 127.0.0.1 -U postgres -qAt -p $port -d $DB 2>&1 \
   | awk -v w=$w '/Trigger trg_attribution_allocations_verify/ { match($0, /time=[0-9.]+/); trg=substr($0, RSTART+5, RLENGTH-5) }
                  /^Execution Time/ { k = n % 3; n++; name = (k == 0) ? "row-trigger " : (k == 1) ? "shard-trigger" : "no-trigger  "; printf "%s %s total %8s ms  trigger %s ms\n", w, name, $3, (trg == "" ? "-" : trg); trg="" }'
done
