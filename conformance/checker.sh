#!/bin/sh
# In-container checker: prints key=value lines describing what the container process sees.
# Arguments are extra directives:
#   mount:/p  mountinfo of the mount at /p: "<mount opts> <fstype> <super opts>"
#   read:/p   "ok:<content, newlines as spaces>" or "err"
#   write:/p  "ok" if `echo x > /p` works, else "fail"
#   ls:/d     entry names of /d (space separated), "err" if unreadable
#   stat:/p   "<type> <octal mode> <uid> <gid> <major> <minor>"
#   link:/p   readlink /p
# Process facts are read from /proc/$$ (this shell is the container process itself).

echo "hostname=$(hostname)"
echo "uid=$(id -u)"
echo "gid=$(id -g)"
echo "groups=$(id -G)"
echo "umask=$(umask)"
echo "cwd=$(pwd)"
while read -r key value; do
  case "$key" in
    CapInh:|CapPrm:|CapEff:|CapBnd:|CapAmb:|NoNewPrivs:|SigIgn:|SigBlk:) echo "${key%:}=$value" ;;
  esac
done < /proc/$$/status
awk '/^Max open files/ {print "limit.nofile=" $4 " " $5}
     /^Max processes/ {print "limit.nproc=" $3 " " $4}' /proc/$$/limits
for ns in cgroup ipc mnt net pid time user uts; do
  echo "ns.$ns=$(readlink /proc/$$/ns/$ns)"
done
env | sort | sed 's/^/env./'
if touch /.ward-probe 2>/dev/null; then echo "root_writable=yes"; rm -f /.ward-probe; else echo "root_writable=no"; fi

for directive in "$@"; do
  path="${directive#*:}"
  case "$directive" in
    mount:*)
      awk -v p="$path" '$5 == p { i = 7; while ($i != "-") i++; print "mount:" p "=" $6 " " $(i+1) " " $(i+3) }' /proc/$$/mountinfo ;;
    read:*)
      if content=$(cat "$path" 2>/dev/null); then echo "read:$path=ok:$(echo $content)"; else echo "read:$path=err"; fi ;;
    write:*)
      if (echo x > "$path") 2>/dev/null; then echo "write:$path=ok"; else echo "write:$path=fail"; fi ;;
    ls:*)
      if names=$(ls -A "$path" 2>/dev/null); then echo "ls:$path=$(echo $names)"; else echo "ls:$path=err"; fi ;;
    stat:*)
      set -- $(stat -c '%F %a %u %g %t %T' "$path" | sed 's/character special file/char/; s/regular empty file/file/; s/regular file/file/; s/symbolic link/symlink/')
      echo "stat:$path=$1 $2 $3 $4 $((0x$5)) $((0x$6))" ;;
    link:*)
      echo "link:$path=$(readlink "$path")" ;;
    *)
      echo "unknown directive $directive" >&2; exit 2 ;;
  esac
done
