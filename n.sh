for host in 127.0.0.1 127.0.0.2; do if exec 3<>"/dev/tcp/$host/47002"; then echo "$host connected"; exec 3<&-; else echo "$host refused"; fi; done
