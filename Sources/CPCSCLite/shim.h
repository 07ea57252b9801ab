#ifndef KYUKYU_CPCSCLITE_SHIM_H
#define KYUKYU_CPCSCLITE_SHIM_H

// What Swift cannot import from pcsc-lite directly: the protocol control blocks are
// exported as globals behind macros, and the reader-state "changed" bits are macros.
#include <PCSC/winscard.h>
#include <PCSC/wintypes.h>
#include <PCSC/pcsclite.h>
#include <PCSC/reader.h>

static inline const SCARD_IO_REQUEST *kyukyu_pci_t0(void) { return SCARD_PCI_T0; }
static inline const SCARD_IO_REQUEST *kyukyu_pci_t1(void) { return SCARD_PCI_T1; }
static inline const SCARD_IO_REQUEST *kyukyu_pci_raw(void) { return SCARD_PCI_RAW; }

#endif
