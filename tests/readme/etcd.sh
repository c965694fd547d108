# Sourced by the README test before the etcd block: an etcd of its own on
# 127.0.0.1:2379 (the README's address; the test's network namespace makes
# it private), gone with the namespace.
etcd --name readme --data-dir "$PWD/etcd-data" \
  --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster readme=http://127.0.0.1:2380 > etcd.log 2>&1 &
for _ in $(seq 100); do
  ETCDCTL_API=3 etcdctl --endpoints http://127.0.0.1:2379 endpoint health > /dev/null 2>&1 && break
  sleep 0.1
done
ETCDCTL_API=3 etcdctl --endpoints http://127.0.0.1:2379 endpoint health
