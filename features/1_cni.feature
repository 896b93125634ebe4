Feature: A CNI brings a minimal k3s cluster up
  k3s installed without flannel, network policy, kube-proxy, traefik, servicelb and metrics-server
  has no pod network: its nodes wait for a CNI and nothing but host-network pods can run.
  Installing Cilium gives it one.

  @destructive
  Rule: Installing Cilium on a cluster without a CNI

    Background:
      Given a k3s cluster without a CNI

    Scenario: Without a CNI every node waits and the cluster's own pods stay pending
      Then every node is NotReady because the CNI plugin is not initialized
      And the cluster DNS and storage pods are Pending

    Scenario: Installing Cilium makes every node Ready and runs the pending pods
      When Cilium is installed
      Then a Cilium agent runs on every node and every replica of the Cilium operator is ready
      And every node is Ready
      And the cluster DNS and storage pods are Running

  Rule: A cluster running Cilium

    Background:
      Given a k3s cluster running Cilium

    Scenario: Cilium runs on every node and the cluster's own pods run
      Then a Cilium agent runs on every node and every replica of the Cilium operator is ready
      And every node is Ready
      And the cluster DNS and storage pods are Running
