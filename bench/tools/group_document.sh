#!/usr/bin/env bash
# group_document.sh <group_uri> <members>: prints the group document of WORKLOAD=group
# (issue 18): members sip:u1@127.0.0.1 .. sip:u<members>@127.0.0.1, each with a display name,
# and sip:bench@127.0.0.1 (the probe's and the fan-out's identity, bench.py); members may see the conference state (R8, R82 is-list-member), anyone else may not (R85).
set -eu
group=$1 members=$2
cat <<HEAD
<?xml version="1.0" encoding="UTF-8"?>
<group xmlns="urn:oma:xml:poc:list-service"
       xmlns:rl="urn:ietf:params:xml:ns:resource-lists"
       xmlns:cp="urn:ietf:params:xml:ns:common-policy"
       xmlns:ocp="urn:oma:xml:xdm:common-policy">
  <list-service uri="$group">
    <display-name>Bench group</display-name>
    <list>
      <entry uri="sip:bench@127.0.0.1"><rl:display-name>Bench</rl:display-name></entry>
HEAD
for i in $(seq 1 "$members"); do
	echo "      <entry uri=\"sip:u$i@127.0.0.1\"><rl:display-name>User $i</rl:display-name></entry>"
done
cat <<TAIL
    </list>
    <max-participant-count>$members</max-participant-count>
    <cp:ruleset>
      <cp:rule id="members">
        <cp:conditions><is-list-member/></cp:conditions>
        <cp:actions><allow-conference-state>true</allow-conference-state></cp:actions>
      </cp:rule>
      <cp:rule id="everyone-else">
        <cp:conditions><ocp:other-identity/></cp:conditions>
        <cp:actions><allow-conference-state>false</allow-conference-state></cp:actions>
      </cp:rule>
    </cp:ruleset>
  </list-service>
</group>
TAIL
