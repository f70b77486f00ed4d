package handover

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// TableName is the netdev table holding Vigil's forwarding rules (`nft list table netdev
// vigil-handover`). Vigil owns it whole and deletes it on start and stop.
const TableName = "vigil-handover"

// NFT forwards with nftables in the netdev family, on the ingress hook of the VIP's
// interface: per VIP one base chain, a set holding the VIP itself until the window ends,
// and a set of the connections this node saw open,
//
//	ip daddr @act tcp flags syn / syn,ack add @own { ip saddr . tcp sport } accept
//	ip daddr @act meta l4proto tcp ip saddr . tcp sport @own accept
//	ip daddr @act meta l4proto tcp ether saddr set SELF ether daddr set OLD dup to IFACE drop
//
// (dup and drop: the library has no fwd expression; the effect is the same.) The VIP's
// element in @act times out with the window in the kernel itself: a rule left behind by an
// agent that died matches nothing once the window is over, and cannot send the VIP's
// traffic to a node that may be gone.
type NFT struct {
	ns     netns.NsHandle
	handle *netlink.Handle

	mu        sync.Mutex
	installed map[netip.Addr]Rule
}

// NewNFT opens a Forwarder for namespace ns; netns.None() is the calling process's own.
func NewNFT(ns netns.NsHandle) (*NFT, error) {
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("opening rtnetlink: %w", err)
	}
	return &NFT{ns: ns, handle: h, installed: map[netip.Addr]Rule{}}, nil
}

// Close releases the rtnetlink handle; rules stay (Reset removes them).
func (f *NFT) Close() { f.handle.Close() }

func (f *NFT) conn() (*nftables.Conn, error) {
	var opts []nftables.ConnOption
	if f.ns.IsOpen() {
		opts = append(opts, nftables.WithNetNSFd(int(f.ns)))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("opening nftables: %w", err)
	}
	return c, nil
}

var table = &nftables.Table{Name: TableName, Family: nftables.TableFamilyNetdev}

// Reset deletes Vigil's table and everything in it.
func (f *NFT) Reset() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.conn()
	if err != nil {
		return err
	}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyNetdev)
	if err != nil {
		return fmt.Errorf("listing nftables tables: %w", err)
	}
	for _, t := range tables {
		if t.Name == TableName {
			c.DelTable(table)
			if err := c.Flush(); err != nil {
				return fmt.Errorf("deleting table %s: %w", TableName, err)
			}
		}
	}
	f.installed = map[netip.Addr]Rule{}
	return nil
}

// Sync installs exactly rules, in one nftables transaction.
func (f *NFT) Sync(rules []Rule) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	want := make(map[netip.Addr]Rule, len(rules))
	for _, r := range rules {
		if _, dup := want[r.VIP]; dup {
			return fmt.Errorf("two forwarding rules for %s", r.VIP)
		}
		want[r.VIP] = r
	}
	var add, remove []Rule
	for vip, r := range f.installed {
		if w, ok := want[vip]; !ok || !w.equal(r) {
			remove = append(remove, r)
		}
	}
	for vip, r := range want {
		if i, ok := f.installed[vip]; !ok || !i.equal(r) {
			add = append(add, r)
		}
	}
	if len(add) == 0 && len(remove) == 0 {
		return nil
	}
	c, err := f.conn()
	if err != nil {
		return err
	}
	for _, r := range remove {
		chain, own, active := names(r.VIP)
		ch := &nftables.Chain{Name: chain, Table: table}
		c.FlushChain(ch)
		c.DelChain(ch)
		c.DelSet(&nftables.Set{Name: own, Table: table})
		c.DelSet(&nftables.Set{Name: active, Table: table})
	}
	if len(add) > 0 {
		c.AddTable(table)
	}
	for _, r := range add {
		if err := f.add(c, r); err != nil {
			return err
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("installing forwarding rules: %w", err)
	}
	for _, r := range remove {
		delete(f.installed, r.VIP)
	}
	for _, r := range add {
		f.installed[r.VIP] = r
	}
	return nil
}

// names of the chain and sets of one VIP.
func names(vip netip.Addr) (chain, own, active string) {
	h := hex.EncodeToString(vip.AsSlice())
	return "fwd-" + h, "own-" + h, "act-" + h
}

// family holds the header layout of one IP version.
type family struct {
	ethertype    uint16
	daddr, saddr uint32 // offsets in the network header
	addrLen      uint32
	portRegister uint32 // the 32-bit register after the source address (concatenation)
	key          nftables.SetDatatype
}

var (
	ipv4 = family{ethertype: unix.ETH_P_IP, daddr: 16, saddr: 12, addrLen: 4, portRegister: 9, key: nftables.TypeIPAddr}
	ipv6 = family{ethertype: unix.ETH_P_IPV6, daddr: 24, saddr: 8, addrLen: 16, portRegister: 12, key: nftables.TypeIP6Addr}
)

func (f *NFT) add(c *nftables.Conn, r Rule) error {
	link, err := f.handle.LinkByName(r.Interface)
	if err != nil {
		return fmt.Errorf("forwarding %s: interface %s: %w", r.VIP, r.Interface, err)
	}
	self := link.Attrs().HardwareAddr
	if len(self) != 6 || len(r.To) != 6 {
		return fmt.Errorf("forwarding %s: %s and the old owner need Ethernet addresses (have %q and %q)", r.VIP, r.Interface, self, r.To)
	}
	fam := ipv4
	if r.VIP.Is6() {
		fam = ipv6
	}
	keyType, err := nftables.ConcatSetType(fam.key, nftables.TypeInetService)
	if err != nil {
		return err
	}
	chainName, setName, activeName := names(r.VIP)
	set := &nftables.Set{
		Table: table, Name: setName, KeyType: keyType, Concatenation: true,
		Dynamic: true, HasTimeout: true, Timeout: r.Window,
	}
	if err := c.AddSet(set, nil); err != nil {
		return fmt.Errorf("forwarding %s: adding set: %w", r.VIP, err)
	}
	active := &nftables.Set{Table: table, Name: activeName, KeyType: fam.key, HasTimeout: true}
	if err := c.AddSet(active, []nftables.SetElement{{Key: r.VIP.AsSlice(), Timeout: r.Window}}); err != nil {
		return fmt.Errorf("forwarding %s: adding the window's set: %w", r.VIP, err)
	}
	chain := c.AddChain(&nftables.Chain{
		Name: chainName, Table: table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookIngress, Priority: nftables.ChainPriorityRef(-500), Device: r.Interface,
	})

	toVIP := []expr.Any{ // meta protocol <family>, <family> daddr VIP, meta l4proto tcp
		&expr.Meta{Key: expr.MetaKeyPROTOCOL, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(fam.ethertype)},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: fam.daddr, Len: fam.addrLen},
		&expr.Lookup{SourceRegister: 1, SetName: active.Name, SetID: active.ID},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
	}
	connKey := []expr.Any{ // <family> saddr . tcp sport
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: fam.saddr, Len: fam.addrLen},
		&expr.Payload{DestRegister: fam.portRegister, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 2},
	}
	rule := func(parts ...[]expr.Any) {
		var exprs []expr.Any
		for _, p := range parts {
			exprs = append(exprs, p...)
		}
		c.AddRule(&nftables.Rule{Table: table, Chain: chain, Exprs: exprs})
	}
	accept := []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}
	// A connection opened here (SYN without ACK) is this node's.
	rule(toVIP, []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{0x12}, Xor: []byte{0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0x02}},
	}, connKey, []expr.Any{
		&expr.Dynset{SrcRegKey: 1, SetName: set.Name, SetID: set.ID, Operation: uint32(unix.NFT_DYNSET_OP_ADD)},
	}, accept)
	rule(toVIP, connKey, []expr.Any{&expr.Lookup{SourceRegister: 1, SetName: set.Name, SetID: set.ID}}, accept)
	// Anything else belongs to the old owner: rewrite the frame to it and send it back out.
	rule(toVIP, []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFTYPE, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint16(unix.ARPHRD_ETHER)},
		&expr.Immediate{Register: 1, Data: self},
		&expr.Payload{OperationType: expr.PayloadWrite, SourceRegister: 1, Base: expr.PayloadBaseLLHeader, Offset: 6, Len: 6},
		&expr.Immediate{Register: 1, Data: r.To},
		&expr.Payload{OperationType: expr.PayloadWrite, SourceRegister: 1, Base: expr.PayloadBaseLLHeader, Offset: 0, Len: 6},
		&expr.Immediate{Register: 1, Data: binaryutil.NativeEndian.PutUint32(uint32(link.Attrs().Index))},
		&expr.Dup{RegDev: 1, IsRegDevSet: true},
		&expr.Verdict{Kind: expr.VerdictDrop},
	})
	return nil
}

var _ Forwarder = (*NFT)(nil)
