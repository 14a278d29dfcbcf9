import { describe, expect, it } from 'vitest';
import {
  UART_DLL, UART_DLM, UART_IER, UART_IIR, UART_LCR, UART_LCR_DLAB, UART_LSR, UART_MCR, UART_MSR, UART_SCR,
  UART_THR, Uart16550,
} from '../../src/vmm/devices/uart.js';

function uart() {
  const out: number[] = [];
  return { u: new Uart16550((b) => out.push(b)), out };
}

describe('Uart16550', () => {
  it('sends THR bytes to the sink and always reports THRE|TEMT', () => {
    const { u, out } = uart();
    expect(u.read(UART_LSR, 1) & 0x60).toBe(0x60);
    u.write(UART_THR, 1, 0x68);
    u.write(UART_THR, 1, 0x169); // only the low byte
    expect(out).toEqual([0x68, 0x69]);
  });

  it('maps DLL/DLM over THR/IER while DLAB is set', () => {
    const { u, out } = uart();
    u.write(UART_LCR, 1, UART_LCR_DLAB | 3);
    u.write(UART_DLL, 1, 0x0c);
    u.write(UART_DLM, 1, 0x01);
    expect(u.read(UART_DLL, 1)).toBe(0x0c);
    expect(u.read(UART_DLM, 1)).toBe(0x01);
    u.write(UART_LCR, 1, 3);
    expect(u.read(UART_IER, 1)).toBe(0);
    expect(u.read(UART_LCR, 1)).toBe(3);
    expect(out).toEqual([]);
  });

  it('reads input through RBR with LSR.DR and an RX interrupt in IIR', () => {
    const { u } = uart();
    expect(u.read(UART_IIR, 1) & 0x0f).toBe(0x01);
    u.pushInput([0x61, 0x62]);
    expect(u.read(UART_LSR, 1) & 1).toBe(1);
    u.write(UART_IER, 1, 1);
    expect(u.read(UART_IIR, 1) & 0x0f).toBe(0x04);
    expect(u.interruptPending()).toBe(true);
    expect(u.read(0, 1)).toBe(0x61);
    expect(u.read(0, 1)).toBe(0x62);
    expect(u.read(UART_LSR, 1) & 1).toBe(0);
    expect(u.interruptPending()).toBe(false);
  });

  it('raises a THR-empty interrupt once when enabled', () => {
    const { u } = uart();
    u.write(UART_IER, 1, 2);
    expect(u.read(UART_IIR, 1) & 0x0f).toBe(0x02);
    expect(u.read(UART_IIR, 1) & 0x0f).toBe(0x01);
  });

  it('keeps MCR, SCR and reports a connected modem', () => {
    const { u } = uart();
    u.write(UART_SCR, 1, 0x5a);
    expect(u.read(UART_SCR, 1)).toBe(0x5a);
    u.write(UART_MCR, 1, 0x03);
    expect(u.read(UART_MCR, 1)).toBe(0x03);
    expect(u.read(UART_MSR, 1)).toBe(0xb0);
  });

  it('loops THR back to RBR in loopback mode', () => {
    const { u, out } = uart();
    u.write(UART_MCR, 1, 0x10);
    u.write(UART_THR, 1, 0x7a);
    expect(out).toEqual([]);
    expect(u.read(0, 1)).toBe(0x7a);
  });
});
